package app

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"runtime"
	"sync"
)

// writeJSONList answers {"<field>": items} byte for byte as writeJSON
// would, but encodes one item at a time: a list of 100,000 plan items or
// key views (tens of megabytes) is never held as a whole encoding, then
// an indented copy, then the response's copy.
func writeJSONList[T any](w http.ResponseWriter, field string, items []T) {
	if items == nil {
		writeJSON(w, http.StatusOK, map[string]any{field: items})
		return
	}
	writeJSONListOf(w, field, len(items), func(i int) T { return items[i] })
}

// writeJSONListOf is writeJSONList over n items made by item(i) as they
// are encoded.
func writeJSONListOf[T any](w http.ResponseWriter, field string, n int, item func(int) T) {
	name, err := json.Marshal(field)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encode: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString("{\n  ")
	bw.Write(name)
	if n == 0 {
		bw.WriteString(": []\n}\n")
		_ = bw.Flush()
		return
	}
	bw.WriteString(": [\n")
	// Items are encoded in batches, one per core at a time, and written
	// in order: encoding is a third of a 100,000-key plan.
	workers := max(1, min(runtime.GOMAXPROCS(0), n/encodeBatch))
	bufs := make([]bytes.Buffer, workers)
	errs := make([]error, workers)
	for round := 0; round < n; round += workers * encodeBatch {
		var wg sync.WaitGroup
		for j := range workers {
			lo := round + j*encodeBatch
			if lo >= n {
				break
			}
			hi := min(lo+encodeBatch, n)
			wg.Go(func() { errs[j] = encodeItems(&bufs[j], lo, hi, n, item) })
		}
		wg.Wait()
		for j := range workers {
			bw.Write(bufs[j].Bytes())
			bufs[j].Reset()
			if errs[j] != nil {
				// The status is sent: end the document so that the client
				// fails on it rather than reading a truncated list as whole.
				bw.WriteString("\n")
				_ = bw.Flush()
				return
			}
		}
	}
	bw.WriteString("  ]\n}\n")
	_ = bw.Flush()
}

// encodeBatch is how many items one goroutine encodes at a time.
const encodeBatch = 512

// encodeItems appends items lo..hi-1 of n, indented as list elements, to
// buf; on an error it stops (what was encoded before stays).
func encodeItems[T any](buf *bytes.Buffer, lo, hi, n int, item func(int) T) error {
	var one bytes.Buffer
	enc := json.NewEncoder(&one)
	enc.SetIndent("    ", "  ")
	var v T // one variable, encoded through a pointer: no copy of each item on the heap
	for i := lo; i < hi; i++ {
		one.Reset()
		v = item(i)
		if err := enc.Encode(&v); err != nil {
			return err
		}
		buf.WriteString("    ")
		buf.Write(bytes.TrimSuffix(one.Bytes(), []byte("\n")))
		if i < n-1 {
			buf.WriteString(",\n")
		} else {
			buf.WriteString("\n")
		}
	}
	return nil
}
