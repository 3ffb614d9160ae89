package commitlog

// The checkpoint file, format version 1 (all integers big-endian):
//
//	offset  size  field
//	0       4     magic "TRCK"
//	4       4     version (1)
//	8       8     logStartOffset   first offset readable (DeleteRecords, retention)
//	16      8     recoveryPoint    every segment with a base offset below it was
//	                               fsynced (with its indexes) after it was rolled
//	24      8     cleanerOffset    compaction has processed the segments below it
//	32      4     CRC-32C of bytes 0..31
//
// It is replaced atomically (write checkpoint.tmp, fsync, rename, fsync the
// directory). A missing or damaged checkpoint means: log start at the first
// segment, recovery point 0 (every segment is validated after an unclean
// shutdown), cleaner offset 0.
//
// The clean-shutdown marker, "clean-shutdown", is an empty file created by
// Close after everything was fsynced and removed (and the removal made
// durable) by Open before anything else is written.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
)

const (
	checkpointName    = "checkpoint"
	checkpointVersion = 1
	checkpointSize    = 36
	cleanMarkerName   = "clean-shutdown"
)

var checkpointMagic = [4]byte{'T', 'R', 'C', 'K'}

type checkpoint struct {
	logStart      int64
	recoveryPoint int64
	cleanerOffset int64
}

func (c checkpoint) encode() []byte {
	b := make([]byte, 0, checkpointSize)
	b = append(b, checkpointMagic[:]...)
	b = binary.BigEndian.AppendUint32(b, checkpointVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(c.logStart))
	b = binary.BigEndian.AppendUint64(b, uint64(c.recoveryPoint))
	b = binary.BigEndian.AppendUint64(b, uint64(c.cleanerOffset))
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

var errBadCheckpoint = errors.New("commitlog: bad checkpoint")

func decodeCheckpoint(b []byte) (checkpoint, error) {
	var c checkpoint
	if len(b) != checkpointSize {
		return c, fmt.Errorf("%w: %d bytes", errBadCheckpoint, len(b))
	}
	if crc32.Checksum(b[:32], crcTable) != binary.BigEndian.Uint32(b[32:]) {
		return c, fmt.Errorf("%w: crc mismatch", errBadCheckpoint)
	}
	if [4]byte(b[:4]) != checkpointMagic {
		return c, fmt.Errorf("%w: magic", errBadCheckpoint)
	}
	if v := binary.BigEndian.Uint32(b[4:]); v != checkpointVersion {
		return c, fmt.Errorf("%w: version %d", errBadCheckpoint, v)
	}
	c.logStart = int64(binary.BigEndian.Uint64(b[8:]))
	c.recoveryPoint = int64(binary.BigEndian.Uint64(b[16:]))
	c.cleanerOffset = int64(binary.BigEndian.Uint64(b[24:]))
	if c.logStart < 0 || c.recoveryPoint < 0 || c.cleanerOffset < 0 {
		return c, fmt.Errorf("%w: negative offset", errBadCheckpoint)
	}
	return c, nil
}

func writeCheckpoint(fsys FS, dir string, c checkpoint) error {
	final := filepath.Join(dir, checkpointName)
	return writeFileAtomic(fsys, dir, final+tmpSuffix, final, c.encode())
}

func readCheckpoint(fsys FS, dir string) (checkpoint, error) {
	b, err := readWholeFile(fsys, filepath.Join(dir, checkpointName))
	if err != nil {
		return checkpoint{}, err
	}
	return decodeCheckpoint(b)
}
