package cdc

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/jackc/pglogrepl"
)

// insertMsg builds a pgoutput Insert message of relation rel with the
// given columns: nil is null, "\x00u" unchanged TOAST, others text.
func insertMsg(rel uint32, cols ...[]byte) []byte {
	b := []byte{'I'}
	b = binary.BigEndian.AppendUint32(b, rel)
	b = append(b, 'N')
	b = binary.BigEndian.AppendUint16(b, uint16(len(cols)))
	for _, c := range cols {
		switch {
		case c == nil:
			b = append(b, 'n')
		case string(c) == "\x00u":
			b = append(b, 'u')
		default:
			b = append(b, 't')
			b = binary.BigEndian.AppendUint32(b, uint32(len(c)))
			b = append(b, c...)
		}
	}
	return b
}

// decodeInsert gives what pglogrepl gives, and declines (for pglogrepl to
// report) whatever is not a well-formed Insert.
func TestDecodeInsertMatchesPglogrepl(t *testing.T) {
	good := [][]byte{
		insertMsg(16384, []byte("42"), []byte("name"), nil, []byte(""), []byte("\x00u"), []byte("12.50")),
		insertMsg(1<<31+5, bytes.Repeat([]byte("x"), 70_000)),
	}
	bin := insertMsg(9, []byte("1"))
	bin[8] = 'b'
	good = append(good, bin)
	for i, m := range good {
		checkDecodeInsert(t, m)
		if _, _, ok := decodeInsert(m, nil); !ok {
			t.Fatalf("message %d declined", i)
		}
	}
	m := good[0]
	bad := [][]byte{
		nil, {'I'}, m[:7], m[:len(m)-1], append(bytes.Clone(m), 0), insertMsg(7),
		append([]byte{'U'}, m[1:]...),
	}
	noN := bytes.Clone(m)
	noN[5] = 'K'
	badKind := bytes.Clone(m)
	badKind[8] = 'z'
	long := bytes.Clone(m)
	binary.BigEndian.PutUint32(long[9:], 1<<31)
	bad = append(bad, noN, badKind, long)
	for i, m := range bad {
		if _, _, ok := decodeInsert(m, nil); ok {
			t.Errorf("bad message %d accepted", i)
		}
	}
}

func checkDecodeInsert(t *testing.T, m []byte) {
	t.Helper()
	rel, cells, ok := decodeInsert(m, make([]cell, 3))
	if !ok {
		return
	}
	msg, err := pglogrepl.ParseV2(m, false)
	if err != nil {
		t.Fatalf("decodeInsert accepted what pglogrepl refuses (%v): %q", err, m)
	}
	im, isInsert := msg.(*pglogrepl.InsertMessageV2)
	if !isInsert {
		t.Fatalf("pglogrepl parsed %T", msg)
	}
	want := fillCells(nil, im.Tuple)
	if rel != im.RelationID || len(cells) != len(want) {
		t.Fatalf("relation %d with %d cells, pglogrepl %d with %d", rel, len(cells), im.RelationID, len(want))
	}
	for i := range want {
		if cells[i].kind != want[i].kind || !bytes.Equal(cells[i].data, want[i].data) {
			t.Fatalf("cell %d: %q %q, pglogrepl %q %q", i, cells[i].kind, cells[i].data, want[i].kind, want[i].data)
		}
	}
}

func FuzzDecodeInsert(f *testing.F) {
	f.Add(insertMsg(16384, []byte("42"), nil, []byte("\x00u"), []byte("x")))
	f.Add(insertMsg(1))
	f.Fuzz(func(t *testing.T, m []byte) { checkDecodeInsert(t, m) })
}
