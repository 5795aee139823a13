// Package bench holds rekey's speed and memory benchmarks. They are
// benchmarks, not tests: run them with
//
//	go test -run '^$' -bench . -benchtime 5x ./bench/
//
// and read the custom metrics (ms/plan, MB-peak-rss, overhead-x).
package bench
