package transcript

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Magic is the first line of every transcript file, newline included.
const Magic = "certlens-transcript v1\n"

// MaxChunk is the largest chunk the format allows: far above any socket read,
// low enough that a corrupt length cannot make Read allocate gigabytes.
const MaxChunk = 16 << 20

// maxMeta bounds the metadata line for the same reason.
const maxMeta = 1 << 20

// Direction says which peer sent a chunk.
type Direction byte

// Directions as written in the file.
const (
	ClientToServer Direction = 'C'
	ServerToClient Direction = 'S'
)

func (d Direction) String() string {
	switch d {
	case ClientToServer:
		return "client->server"
	case ServerToClient:
		return "server->client"
	}
	return fmt.Sprintf("Direction(%#x)", byte(d))
}

// Chunk is the bytes of one read, in one direction.
type Chunk struct {
	Dir  Direction
	Data []byte
}

// Peer names a program that took part in the recording.
type Peer struct {
	Role    string `json:"role"`    // "client" or "server"
	Program string `json:"program"` // e.g. "openssl s_server", "curl"
	Version string `json:"version"` // first line of its version output
	// Command is the command line, with temp paths cut to file names.
	Command string `json:"command,omitempty"`
}

// Meta describes a recording.
type Meta struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Peers       []Peer    `json:"peers,omitempty"`
	Date        time.Time `json:"date,omitzero"`
	// Notes holds facts the recording checked, for tests to compare with,
	// e.g. "issuer_count": "261".
	Notes map[string]string `json:"notes,omitempty"`
}

// Transcript is one recorded TCP connection.
type Transcript struct {
	Meta   Meta
	Chunks []Chunk
}

// Stream returns all bytes sent in direction dir, concatenated.
func (t *Transcript) Stream(dir Direction) []byte {
	var b []byte
	for _, c := range t.Chunks {
		if c.Dir == dir {
			b = append(b, c.Data...)
		}
	}
	return b
}

// Errors Read returns, wrapped with where they happened.
var (
	ErrNotTranscript = errors.New("not a certlens transcript v1")
	ErrBadChunk      = errors.New("bad chunk")
)

// Read decodes a transcript. It reads r to its end.
func Read(r io.Reader) (*Transcript, error) {
	br := bufio.NewReader(r)
	magic, err := readLine(br, len(Magic))
	if err != nil || magic != Magic {
		return nil, ErrNotTranscript
	}
	line, err := readLine(br, maxMeta)
	if err != nil {
		return nil, fmt.Errorf("read transcript metadata: %w", err)
	}
	t := &Transcript{}
	if err := json.Unmarshal([]byte(line), &t.Meta); err != nil {
		return nil, fmt.Errorf("read transcript metadata: %w", err)
	}
	var hdr [5]byte
	for i := 0; ; i++ {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if err == io.EOF {
				return t, nil
			}
			return nil, fmt.Errorf("read chunk %d header: %w", i, err)
		}
		dir := Direction(hdr[0])
		n := binary.BigEndian.Uint32(hdr[1:])
		if dir != ClientToServer && dir != ServerToClient {
			return nil, fmt.Errorf("chunk %d: direction %#x: %w", i, hdr[0], ErrBadChunk)
		}
		if n == 0 || n > MaxChunk {
			return nil, fmt.Errorf("chunk %d: length %d outside 1..%d: %w", i, n, MaxChunk, ErrBadChunk)
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(br, data); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("read chunk %d (%d bytes): %w", i, n, err)
		}
		t.Chunks = append(t.Chunks, Chunk{Dir: dir, Data: data})
	}
}

// readLine reads up to and including '\n', refusing lines longer than max.
func readLine(br *bufio.Reader, max int) (string, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > max {
			return "", fmt.Errorf("line longer than %d bytes", max)
		}
		switch {
		case err == nil:
			return string(line), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			return "", io.ErrUnexpectedEOF
		default:
			return "", err
		}
	}
}

// ReadFile reads the transcript stored at path.
func ReadFile(path string) (*Transcript, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Write encodes t. It refuses chunks the format cannot hold rather than
// write a file Read would reject.
func (t *Transcript) Write(w io.Writer) error {
	meta, err := json.Marshal(t.Meta)
	if err != nil {
		return fmt.Errorf("encode transcript metadata: %w", err)
	}
	if len(meta)+1 > maxMeta {
		return fmt.Errorf("transcript metadata is %d bytes, limit %d", len(meta), maxMeta)
	}
	bw := bufio.NewWriter(w)
	bw.WriteString(Magic)
	bw.Write(meta)
	bw.WriteByte('\n')
	var hdr [5]byte
	for i, c := range t.Chunks {
		if c.Dir != ClientToServer && c.Dir != ServerToClient {
			return fmt.Errorf("chunk %d: direction %#x: %w", i, byte(c.Dir), ErrBadChunk)
		}
		if len(c.Data) == 0 || len(c.Data) > MaxChunk {
			return fmt.Errorf("chunk %d: length %d outside 1..%d: %w", i, len(c.Data), MaxChunk, ErrBadChunk)
		}
		hdr[0] = byte(c.Dir)
		binary.BigEndian.PutUint32(hdr[1:], uint32(len(c.Data)))
		bw.Write(hdr[:])
		bw.Write(c.Data)
	}
	// bufio keeps the first write error; Flush returns it.
	return bw.Flush()
}

// WriteFile writes t to path (mode 0644), replacing it.
func (t *Transcript) WriteFile(path string) error {
	var buf bytes.Buffer
	if err := t.Write(&buf); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
