// Package file provides the file source and sink connectors, compatible with
// Kafka's FileStreamSource and FileStreamSink (same class names accepted, same
// config keys: file, topic, topics, batch.size).
//
// Source offsets use Kafka's FileStreamSource format, so offsets stored by
// Kafka Connect carry over: source partition {"filename": <file>}, offset
// {"position": <byte offset after the last line emitted>}.
package file

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/tributary-data/tributary/connect"
)

// Class names: ours, and the Kafka connectors these replace.
const (
	SourceClass      = "io.tributary.connect.file.FileStreamSourceConnector"
	SinkClass        = "io.tributary.connect.file.FileStreamSinkConnector"
	KafkaSourceClass = "org.apache.kafka.connect.file.FileStreamSourceConnector"
	KafkaSinkClass   = "org.apache.kafka.connect.file.FileStreamSinkConnector"
	version          = "1.0.0"

	// Offset keys, as Kafka's FileStreamSourceTask writes them.
	filenameKey = "filename"
	positionKey = "position"
)

func sourceDef() *connect.ConfigDef {
	return connect.NewConfigDef().
		Define(connect.ConfigKey{Name: "file", Type: connect.TypeString, Required: true, Importance: connect.High,
			Validator: connect.NonEmptyString(), Doc: "The file to read. It is tailed: lines appended later are read too, a rotated file (renamed or truncated) is followed."}).
		Define(connect.ConfigKey{Name: "topic", Type: connect.TypeString, Required: true, Importance: connect.High,
			Validator: connect.NonEmptyString(), Doc: "The topic to publish lines to."}).
		Define(connect.ConfigKey{Name: "batch.size", Type: connect.TypeInt, Default: "2000", Importance: connect.Low,
			Validator: connect.AtLeast(1), Doc: "The most lines returned by one poll."})
}

// Source is the file source connector. It runs one task: a file is read
// sequentially.
type Source struct{ config map[string]string }

// NewSource returns a file source connector.
func NewSource() connect.Connector { return &Source{} }

func (s *Source) Version() string               { return version }
func (s *Source) ConfigDef() *connect.ConfigDef { return sourceDef() }

func (s *Source) Validate(context.Context, map[string]string) (map[string][]string, error) {
	return nil, nil
}

func (s *Source) Start(_ context.Context, _ connect.ConnectorContext, config map[string]string) error {
	s.config = config
	return nil
}

// TaskConfigs returns one task config: a single file has a single reader.
func (s *Source) TaskConfigs(context.Context, int) ([]map[string]string, error) {
	return connect.TaskConfigsOf(s.config, 1), nil
}

func (s *Source) Stop(context.Context) error { return nil }

// NewTask returns a new source task.
func (s *Source) NewTask() connect.SourceTask { return &SourceTask{} }

// SourceTask tails one file.
type SourceTask struct {
	path, topic string
	batch       int
	partition   map[string]any // the source partition, one map for every record (read-only)
	poll        time.Duration  // wait between looks at a file with no new line

	f      *os.File
	r      *bufio.Reader
	ino    uint64
	pos    int64 // byte offset after the last complete line read
	maxLen int
	// lastBatch is the size of the last non-empty batch (sizes the next).
	lastBatch int
}

// maxLineBytes bounds a line; a longer one fails the task with a clear error.
const maxLineBytes = 16 << 20

func (t *SourceTask) Start(ctx context.Context, tc connect.SourceTaskContext, config map[string]string) error {
	cfg, errs := sourceDef().Parse(config)
	if len(errs) > 0 {
		return fmt.Errorf("file source config: %v", errs)
	}
	t.path, t.topic, t.batch = cfg.String("file"), cfg.String("topic"), int(cfg.Int("batch.size"))
	t.poll, t.maxLen = 200*time.Millisecond, maxLineBytes
	t.partition = map[string]any{filenameKey: t.path}
	offs, err := tc.Offsets(ctx, []map[string]any{{filenameKey: t.path}})
	if err != nil {
		return fmt.Errorf("reading stored offsets: %w", err)
	}
	if len(offs) == 1 {
		switch p := offs[0].Offset[positionKey].(type) {
		case int64:
			t.pos = p
		case float64:
			t.pos = int64(p)
		default:
			return fmt.Errorf("stored offset %v for %s has no numeric %q", offs[0].Offset, t.path, positionKey)
		}
	}
	return nil
}

// open (re)opens the file at t.pos; a missing file is not an error yet
// (the file may appear later).
func (t *SourceTask) open() error {
	f, err := os.Open(t.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", t.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	if st.Size() < t.pos {
		// The file is shorter than our position: it was truncated or
		// replaced while we were away. Start again from its beginning.
		t.pos = 0
	}
	if _, err := f.Seek(t.pos, io.SeekStart); err != nil {
		f.Close()
		return err
	}
	t.f, t.r, t.ino = f, bufio.NewReaderSize(f, 1<<20), inode(st)
	return nil
}

func inode(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return 0
}

// rotated reports whether the path now names another file than the open
// one, or the open file was truncated below our position.
func (t *SourceTask) rotated() bool {
	st, err := os.Stat(t.path)
	if err != nil {
		return false // gone for now: keep reading what we have
	}
	if inode(st) != t.ino {
		return true
	}
	return st.Size() < t.pos
}

// Poll returns up to batch.size complete lines; it waits up to about a
// second for new data.
func (t *SourceTask) Poll(ctx context.Context) ([]connect.SourceRecord, error) {
	deadline := time.Now().Add(time.Second)
	for {
		if t.f == nil {
			if err := t.open(); err != nil {
				return nil, err
			}
		}
		if t.f != nil {
			recs, err := t.readLines()
			if err != nil || len(recs) > 0 {
				return recs, err
			}
			if t.rotated() {
				t.f.Close()
				t.f, t.r, t.pos = nil, nil, 0
				continue
			}
		}
		if time.Now().After(deadline) {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(t.poll):
		}
	}
}

func (t *SourceTask) readLines() (out []connect.SourceRecord, err error) {
	// Only the batch's last record carries its offset (connect.SourceRecord:
	// the worker stores one offset per batch and partition).
	defer func() {
		if n := len(out); n > 0 {
			out[n-1].SourceOffset = map[string]any{positionKey: t.pos}
			t.lastBatch = n
		}
	}()
	out = make([]connect.SourceRecord, 0, min(t.batch, max(t.lastBatch, 16)))
	for len(out) < t.batch {
		line, err := t.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			var long []byte
			long = append(long, line...)
			for errors.Is(err, bufio.ErrBufferFull) && len(long) <= t.maxLen {
				line, err = t.r.ReadSlice('\n')
				long = append(long, line...)
			}
			if len(long) > t.maxLen {
				return out, fmt.Errorf("%s: a line at byte %d is longer than %d bytes", t.path, t.pos, t.maxLen)
			}
			line = long
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				// An incomplete last line stays unread until its newline
				// arrives: seek back so the next read starts at it.
				if _, serr := t.f.Seek(t.pos, io.SeekStart); serr != nil {
					return out, serr
				}
				t.r.Reset(t.f)
				return out, nil
			}
			return out, fmt.Errorf("read %s: %w", t.path, err)
		}
		t.pos += int64(len(line))
		text := string(line[:len(line)-1])
		if n := len(text); n > 0 && text[n-1] == '\r' {
			text = text[:n-1]
		}
		out = append(out, connect.SourceRecord{
			Record:          connect.Record{Topic: t.topic, ValueSchema: connect.StringSchema, Value: text},
			SourcePartition: t.partition,
		})
	}
	return out, nil
}

// Commit has nothing to acknowledge: the stored offset is the resume point.
func (t *SourceTask) Commit(context.Context, []connect.PartitionOffset) error { return nil }

// Stop closes the file.
func (t *SourceTask) Stop(context.Context) error {
	if t.f != nil {
		err := t.f.Close()
		t.f = nil
		return err
	}
	return nil
}
