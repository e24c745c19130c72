// Package transcript stores recorded TLS connections: the two byte streams of
// one TCP connection, as chunks in the causal order a relay read them, so
// parsers can be tested against real peers without running them.
//
// # File format (version 1)
//
// A transcript file (NAME.transcript) is, byte for byte:
//
//  1. The line "certlens-transcript v1\n".
//  2. One line holding a JSON object (Meta: name, description, peers and
//     their versions, recording date, free-form notes), then "\n". JSON
//     escapes newlines inside strings, so the object is always one line; it
//     may be at most 1 MiB.
//  3. Zero or more chunks up to the end of the file, each:
//     - 1 byte direction: 'C' (client to server) or 'S' (server to client);
//     - 4 bytes big-endian length n, 1 <= n <= 16 MiB (MaxChunk);
//     - n bytes, exactly as read from the socket.
//
// A chunk is one successful read by the relay: chunk boundaries are where the
// kernel happened to hand bytes over, not TLS record boundaries, which is
// what a streaming parser must cope with. A chunk was recorded before it was
// forwarded, so everything a peer sent in answer to it comes after it.
// Anything after the last whole chunk, an unknown direction or an
// out-of-range length is an error; nothing else is allowed in the file.
//
// WritePcap turns a transcript into a classic pcap of one TCP connection
// (127.0.0.1:40000 to 127.0.0.1:443) that Wireshark dissects as TLS; it is
// derived data for cross-checking with tshark.
package transcript
