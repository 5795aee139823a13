package auditlog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// Line is one exported audit event: one JSON object per line. PrevHash and
// Hash let a SIEM check the chain's links; KeyID names the audit key that
// sealed the event ("" for an unkeyed one).
type Line struct {
	Seq        int64             `json:"seq"`
	At         string            `json:"at"`
	RotationID string            `json:"rotation_id,omitempty"`
	Key        string            `json:"key,omitempty"`
	Actor      string            `json:"actor"`
	Action     string            `json:"action"`
	Phase      string            `json:"phase,omitempty"`
	Detail     map[string]string `json:"detail,omitempty"`
	PrevHash   string            `json:"prev_hash"`
	Hash       string            `json:"hash"`
	KeyID      string            `json:"key_id,omitempty"`
}

// PageFunc reads up to limit events after seq, in Seq order.
type PageFunc func(ctx context.Context, after int64, limit int) ([]rotator.AuditEvent, error)

const exportPage = 1000

// Export writes every event after since to w as JSON Lines, a page at a
// time, and returns the last Seq written (since when none).
func Export(ctx context.Context, w io.Writer, page PageFunc, since int64) (int64, error) {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	last := since
	for {
		evs, err := page(ctx, last, exportPage)
		if err != nil {
			return last, err
		}
		for _, e := range evs {
			if err := enc.Encode(Line{Seq: e.Seq, At: e.At.UTC().Format(time.RFC3339Nano), RotationID: e.RotationID, Key: e.Key,
				Actor: e.Actor, Action: e.Action, Phase: string(e.Phase), Detail: e.Detail, PrevHash: e.PrevHash, Hash: e.Hash,
				KeyID: rotator.AuditHashKeyID(e.Hash)}); err != nil {
				return last, err
			}
			last = e.Seq
		}
		if err := bw.Flush(); err != nil {
			return last, err
		}
		if len(evs) < exportPage {
			return last, nil
		}
	}
}

// LastExported returns the Seq of the last line of an export file, 0 when
// the file is missing or empty. A file whose last line is cut short (an
// export interrupted mid-write) is an error: appending after it would bury
// a broken line in the middle of the file.
func LastExported(path string) (int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if st.Size() == 0 {
		return 0, nil
	}
	// Read the tail: a line is far shorter than 1 MiB.
	off := max(0, st.Size()-1<<20)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	if buf[len(buf)-1] != '\n' {
		return 0, fmt.Errorf("%s ends with an incomplete line (an interrupted export?): remove it, then export again", path)
	}
	buf = buf[:len(buf)-1]
	line := buf[bytes.LastIndexByte(buf, '\n')+1:]
	var l Line
	if err := json.Unmarshal(line, &l); err != nil || l.Seq <= 0 {
		return 0, fmt.Errorf("%s: its last line is not an exported audit event", path)
	}
	return l.Seq, nil
}
