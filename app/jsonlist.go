package app

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
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
	var one bytes.Buffer
	enc := json.NewEncoder(&one)
	enc.SetIndent("    ", "  ")
	var v T // one variable, encoded through a pointer: no copy of each item on the heap
	for i := range n {
		one.Reset()
		v = item(i)
		if err := enc.Encode(&v); err != nil {
			// The status is sent: end the document so that the client
			// fails on it rather than reading a truncated list as whole.
			bw.WriteString("\n")
			_ = bw.Flush()
			return
		}
		bw.WriteString("    ")
		bw.Write(bytes.TrimSuffix(one.Bytes(), []byte("\n")))
		if i < n-1 {
			bw.WriteString(",\n")
		} else {
			bw.WriteString("\n")
		}
	}
	bw.WriteString("  ]\n}\n")
	_ = bw.Flush()
}
