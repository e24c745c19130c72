package transcript

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sample() *Transcript {
	return &Transcript{
		Meta: Meta{
			Name:        "sample",
			Description: "two lines\nof description",
			Peers:       []Peer{{Role: "server", Program: "openssl s_server", Version: "OpenSSL 3.0.x"}},
			Date:        time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC),
			Notes:       map[string]string{"issuer_count": "3"},
		},
		Chunks: []Chunk{
			{ClientToServer, []byte{0x16, 0x03, 0x01, 0x00, 0x01, 0x01}},
			{ServerToClient, bytes.Repeat([]byte{0xab}, 70000)},
			{ServerToClient, []byte{'\n'}},
			{ClientToServer, []byte("C")},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		t    *Transcript
	}{
		{"metadata and chunks both ways", sample()},
		{"no chunks", &Transcript{Meta: Meta{Name: "empty"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.t.Write(&buf); err != nil {
				t.Fatal(err)
			}
			first := buf.Bytes()
			lines := bytes.SplitN(first, []byte("\n"), 3)
			if len(lines) != 3 || string(lines[0])+"\n" != Magic || !json.Valid(lines[1]) {
				t.Fatalf("file does not start with the magic line and one metadata line: %q", first[:min(len(first), 200)])
			}
			got, err := Read(bytes.NewReader(first))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.t) {
				t.Errorf("read back differs:\n got %+v\nwant %+v", got.Meta, tt.t.Meta)
			}
			var again bytes.Buffer
			if err := got.Write(&again); err != nil || !bytes.Equal(again.Bytes(), first) {
				t.Errorf("rewrite is not byte-identical (err %v)", err)
			}
		})
	}

	path := filepath.Join(t.TempDir(), "x.transcript")
	if err := sample().WriteFile(path); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil || !reflect.DeepEqual(got, sample()) {
		t.Errorf("ReadFile: %v", err)
	}
	if s := got.Stream(ServerToClient); len(s) != 70001 || s[70000] != '\n' {
		t.Errorf("Stream(S) has %d bytes", len(s))
	}
}

func chunkHeader(dir byte, n uint32) []byte {
	h := []byte{dir, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(h[1:], n)
	return h
}

func TestReadErrors(t *testing.T) {
	head := Magic + `{"name":"x"}` + "\n"
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty input", "", ErrNotTranscript},
		{"other magic", "certlens-transcript v2\n{}\n", ErrNotTranscript},
		{"magic without newline", strings.TrimSuffix(Magic, "\n"), ErrNotTranscript},
		{"metadata without newline", Magic + `{"name":"x"}`, io.ErrUnexpectedEOF},
		{"unknown direction", head + string(chunkHeader('X', 1)) + "a", ErrBadChunk},
		{"zero length", head + string(chunkHeader('C', 0)), ErrBadChunk},
		{"length beyond 16 MiB", head + string(chunkHeader('S', MaxChunk+1)), ErrBadChunk},
		{"truncated header", head + "C\x00\x00", io.ErrUnexpectedEOF},
		{"truncated data", head + string(chunkHeader('C', 10)) + "short", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(tt.in))
			if !errors.Is(err, tt.want) {
				t.Errorf("Read = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := Read(strings.NewReader(Magic + "not json\n")); err == nil {
		t.Error("bad metadata JSON accepted")
	}
	if _, err := Read(strings.NewReader(Magic + strings.Repeat("x", maxMeta+1))); err == nil {
		t.Error("oversized metadata line accepted")
	}
}

func TestWriteRejectsBadChunks(t *testing.T) {
	for _, c := range []Chunk{{'X', []byte("a")}, {ClientToServer, nil}} {
		tr := &Transcript{Chunks: []Chunk{c}}
		if err := tr.Write(io.Discard); !errors.Is(err, ErrBadChunk) {
			t.Errorf("Write(%v, %d bytes) = %v, want ErrBadChunk", c.Dir, len(c.Data), err)
		}
	}
}
