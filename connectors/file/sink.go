package file

import (
	"bufio"
	"context"
	"fmt"
	"os"

	"github.com/tributary-data/tributary/connect"
)

func sinkDef() *connect.ConfigDef {
	return connect.NewConfigDef().
		Define(connect.ConfigKey{Name: "file", Type: connect.TypeString, Required: true, Importance: connect.High,
			Validator: connect.NonEmptyString(), Doc: "The file to append records to, one line per record (its value's text form)."})
}

// Sink is the file sink connector: every task appends to the same file, so
// use tasks.max=1 unless interleaved lines are fine.
type Sink struct{ config map[string]string }

// NewSink returns a file sink connector.
func NewSink() connect.Connector { return &Sink{} }

func (s *Sink) Version() string               { return version }
func (s *Sink) ConfigDef() *connect.ConfigDef { return sinkDef() }

func (s *Sink) Validate(context.Context, map[string]string) (map[string][]string, error) {
	return nil, nil
}

func (s *Sink) Start(_ context.Context, _ connect.ConnectorContext, config map[string]string) error {
	s.config = config
	return nil
}

// TaskConfigs gives every task the connector's config.
func (s *Sink) TaskConfigs(_ context.Context, max int) ([]map[string]string, error) {
	return connect.TaskConfigsOf(s.config, max), nil
}

func (s *Sink) Stop(context.Context) error { return nil }

// NewTask returns a new sink task.
func (s *Sink) NewTask() connect.SinkTask { return &SinkTask{} }

// SinkTask appends record values, one per line. Lines are buffered and
// written and fsynced by Flush, before the worker commits their offsets.
// Every write to the file ends at a line boundary, so a crash leaves whole
// lines (which the replay may duplicate), never half a line that the
// replay's first line would be glued to.
type SinkTask struct {
	f    *os.File
	w    *bufio.Writer
	line []byte // scratch: the line being written
}

func (t *SinkTask) Start(_ context.Context, _ connect.SinkTaskContext, config map[string]string) error {
	cfg, errs := sinkDef().Parse(config)
	if len(errs) > 0 {
		return fmt.Errorf("file sink config: %v", errs)
	}
	f, err := os.OpenFile(cfg.String("file"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open the sink file: %w", err)
	}
	t.f, t.w = f, bufio.NewWriterSize(f, 1<<20)
	return nil
}

func (t *SinkTask) Open(context.Context, []connect.TopicPartition) error  { return nil }
func (t *SinkTask) Close(context.Context, []connect.TopicPartition) error { return nil }

// Put buffers one line per record: the value's text form ("null" for a
// tombstone, as Kafka's FileStreamSink prints it).
func (t *SinkTask) Put(_ context.Context, recs []connect.SinkRecord) error {
	for i := range recs {
		l := t.line[:0]
		switch v := recs[i].Value.(type) {
		case string:
			l = append(l, v...)
		case []byte:
			l = append(l, v...)
		case nil:
			l = append(l, "null"...)
		default:
			l = fmt.Append(l, v)
		}
		l = append(l, '\n')
		t.line = l
		// Write out what is buffered first when the line does not fit, so
		// that bufio never splits a line across two writes (a longer line
		// than the buffer goes out whole, in one write).
		if t.w.Buffered() > 0 && t.w.Available() < len(l) {
			if err := t.w.Flush(); err != nil {
				return fmt.Errorf("write the sink file: %w", err)
			}
		}
		if _, err := t.w.Write(l); err != nil {
			return fmt.Errorf("write the sink file: %w", err)
		}
	}
	return nil
}

// Flush writes the buffered lines and fsyncs the file.
func (t *SinkTask) Flush(context.Context, map[connect.TopicPartition]int64) error {
	if err := t.w.Flush(); err != nil {
		return fmt.Errorf("write the sink file: %w", err)
	}
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("sync the sink file: %w", err)
	}
	return nil
}

// Stop flushes and closes the file.
func (t *SinkTask) Stop(ctx context.Context) error {
	if t.f == nil {
		return nil
	}
	ferr := t.Flush(ctx, nil)
	cerr := t.f.Close()
	t.f = nil
	if ferr != nil {
		return ferr
	}
	return cerr
}
