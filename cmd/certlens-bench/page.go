package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// The page rows (-page N): does an open live page cost the proxy? N TLS
// 1.2 handshakes with the 261-CA list (the largest event, 60 KB of issuer
// names) through certlens with its page off, on but closed, open (a reader
// of /events, as a browser is), and open but stalled (a reader that never
// reads: the hub must drop for it, not wait). Throughput is handshakes/s
// with pageWorkers in parallel; CPU is certlens's per handshake.

const pageWorkers = 4

type pageRow struct {
	name     string
	peer     *peer
	admin    string
	n        int
	errors   int
	wall     time.Duration
	cpu      time.Duration
	reader   *sseReader
	stalled  net.Conn
	received int64 // events the open reader got
	missed   uint64
}

// sseReader reads the page's event stream as fast as it comes, and keeps
// the latest "missed" count the stream reports.
type sseReader struct {
	events atomic.Int64
	missed atomic.Uint64
	done   chan struct{}
	resp   *http.Response
}

func openReader(admin string) (*sseReader, error) {
	resp, err := http.Get("http://" + admin + "/events")
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET /events: %s", resp.Status)
	}
	r := &sseReader{done: make(chan struct{}), resp: resp}
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 4<<20)
		stats := false
		for sc.Scan() {
			line := sc.Bytes()
			switch {
			case bytes.Equal(line, []byte("event: stats")):
				stats = true
			case bytes.HasPrefix(line, []byte("data: ")) && stats:
				var s struct{ Missed uint64 }
				if json.Unmarshal(line[6:], &s) == nil {
					r.missed.Store(s.Missed)
				}
				stats = false
			case bytes.HasPrefix(line, []byte("data: ")):
				r.events.Add(1)
			}
		}
	}()
	return r, nil
}

func (r *sseReader) close() {
	r.resp.Body.Close()
	<-r.done
}

// openStalled asks for the event stream and never reads it.
func openStalled(admin string) (net.Conn, error) {
	c, err := net.Dial("tcp", admin)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		// A small window, so that the server's writes block soon.
		_ = tc.SetReadBuffer(4096)
	}
	fmt.Fprintf(c, "GET /events HTTP/1.1\r\nHost: %s\r\n\r\n", admin)
	return c, nil
}

// runPage is the -page mode: the bench's keys, then the page rows.
func runPage(certlens string, n int) error {
	if certlens == "" {
		return errors.New("-certlens is required: build it with go build -o /tmp/certlens ./cmd/certlens")
	}
	dir, err := os.MkdirTemp("", "certlens-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b := &bench{dir: dir}
	if err := b.keys(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "the live page: %d handshakes through each of 4 certlens, interleaved...\n", n)
	return b.pageLoad(certlens, n)
}

func (b *bench) pageLoad(bin string, n int) error {
	cases, stop, err := b.issuerCases()
	if err != nil {
		return err
	}
	defer stop()
	var tc issuerCase
	for _, c := range cases {
		if c.list != "2 CAs" && c.client == "chain under a listed CA" {
			tc = c
		}
	}
	rows := []*pageRow{{name: "page off (--ui=false)"}, {name: "page closed"}, {name: "page open"}, {name: "page open, reader stalled"}}
	for i, r := range rows {
		args := []string{"--admin-listen="}
		if i > 0 {
			r.admin = freeAddr()
			args = []string{"--admin-listen", r.admin}
		}
		p, err := b.certlensArgs(bin, r.name, nil, args)
		if err != nil {
			return err
		}
		defer p.stop()
		r.peer = p
		switch i {
		case 2:
			if r.reader, err = openReader(r.admin); err != nil {
				return err
			}
			defer r.reader.close()
		case 3:
			if r.stalled, err = openStalled(r.admin); err != nil {
				return err
			}
			defer r.stalled.Close()
		}
	}
	// Interleaved blocks, as the latency rows: a drift of the machine falls
	// on every row alike.
	const blocks = 20
	per := max(pageWorkers, n/blocks)
	for round := 0; round*per < n; round++ {
		k := min(per, n-round*per)
		for j := range rows {
			r := rows[(round+j)%len(rows)]
			c0 := sampleCPU(r.peer.pid)
			start := time.Now()
			errs := b.parallelHandshakes(r.peer, tc, k)
			r.wall += time.Since(start)
			time.Sleep(20 * time.Millisecond) // the last tunnel's close work
			r.cpu += cpuSince(c0, sampleCPU(r.peer.pid))
			r.n += k - errs
			r.errors += errs
		}
	}
	time.Sleep(500 * time.Millisecond) // the reader's last events
	for _, r := range rows {
		if r.reader != nil {
			r.received, r.missed = r.reader.events.Load(), r.reader.missed.Load()
		}
	}
	printPageTable(rows, n)
	return nil
}

// parallelHandshakes makes n handshakes through p, pageWorkers at a time,
// and returns how many failed.
func (b *bench) parallelHandshakes(p *peer, tc issuerCase, n int) int {
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range pageWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if b.issuerHandshake(p, tc) != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(failed.Load())
}

func printPageTable(rows []*pageRow, n int) {
	w := io.Writer(os.Stdout)
	fmt.Fprintf(w, "\nThe live page under load: %d TLS 1.2 handshakes per row, %d CAs (60 KB) each, %d clients in parallel\n\n", n, manyCAs+1, pageWorkers)
	fmt.Fprintln(w, "| certlens | handshakes/s | vs closed | CPU per handshake | vs closed | errors | events streamed | missed by the reader |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	base := rows[1]
	rate := func(r *pageRow) float64 { return float64(r.n) / r.wall.Seconds() }
	cpu := func(r *pageRow) time.Duration { return r.cpu / time.Duration(max(1, r.n)) }
	for _, r := range rows {
		streamed, missed := "-", "-"
		if r.reader != nil {
			streamed, missed = fmt.Sprint(r.received), fmt.Sprint(r.missed)
		}
		fmt.Fprintf(w, "| %s | %.0f | %+.1f%% | %s | %+.1f%% | %d | %s | %s |\n", r.name, rate(r), 100*(rate(r)/rate(base)-1),
			ms(cpu(r)), 100*(float64(cpu(r))/float64(cpu(base))-1), r.errors, streamed, missed)
	}
}
