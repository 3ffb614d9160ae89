package file

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-data/tributary/connect"
)

type offsets map[string]map[string]any

func (o offsets) Offsets(_ context.Context, ps []map[string]any) ([]connect.PartitionOffset, error) {
	var out []connect.PartitionOffset
	for _, p := range ps {
		if off, ok := o[p[filenameKey].(string)]; ok {
			out = append(out, connect.PartitionOffset{Partition: p, Offset: off})
		}
	}
	return out, nil
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(s)
	f.Close()
}

func startSource(t *testing.T, path string, stored offsets, batch string) *SourceTask {
	t.Helper()
	task := NewSource().(*Source).NewTask().(*SourceTask)
	if err := task.Start(context.Background(), stored, map[string]string{"file": path, "topic": "lines", "batch.size": batch}); err != nil {
		t.Fatal(err)
	}
	task.poll = 10 * time.Millisecond
	t.Cleanup(func() { task.Stop(context.Background()) })
	return task
}

func pollLines(t *testing.T, task *SourceTask) ([]string, int64) {
	t.Helper()
	recs, err := task.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	var last int64 = -1
	for i, r := range recs {
		if r.Topic != "lines" || r.SourcePartition[filenameKey] == nil {
			t.Fatalf("bad record %+v", r)
		}
		lines = append(lines, r.Value.(string))
		// One offset per batch, on its last record (connect.SourceRecord).
		if i < len(recs)-1 {
			if r.SourceOffset != nil {
				t.Fatalf("record %d of %d carries an offset: %v", i, len(recs), r.SourceOffset)
			}
			continue
		}
		last = r.SourceOffset[positionKey].(int64)
	}
	return lines, last
}

func TestSourceTailsResumesAndFollowsRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.txt")
	appendFile(t, path, "one\ntwo\r\nthree\npart")
	task := startSource(t, path, offsets{}, "2")
	lines, pos := pollLines(t, task)
	if strings.Join(lines, ",") != "one,two" || pos != int64(len("one\ntwo\r\n")) {
		t.Fatalf("first batch %q at %d", lines, pos)
	}
	lines, _ = pollLines(t, task)
	if strings.Join(lines, ",") != "three" {
		t.Fatalf("second batch %q: the incomplete line must wait", lines)
	}
	appendFile(t, path, "ial\n")
	lines, pos = pollLines(t, task)
	if strings.Join(lines, ",") != "partial" || pos != int64(len("one\ntwo\r\nthree\npartial\n")) {
		t.Fatalf("completed line %q at %d", lines, pos)
	}

	// A restart resumes after the stored position.
	appendFile(t, path, "four\n")
	task2 := startSource(t, path, offsets{path: {positionKey: pos}}, "100")
	if lines, _ := pollLines(t, task2); strings.Join(lines, ",") != "four" {
		t.Fatalf("after restart: %q", lines)
	}

	// Rotation: the file is renamed away and a new one starts.
	os.Rename(path, path+".1")
	appendFile(t, path, "new1\nnew2\n")
	deadline := time.Now().Add(5 * time.Second)
	var got []string
	for len(got) < 2 && time.Now().Before(deadline) {
		l, _ := pollLines(t, task2)
		got = append(got, l...)
	}
	if strings.Join(got, ",") != "new1,new2" {
		t.Fatalf("after rotation: %q", got)
	}
}

func TestSourceRestartsTruncatedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.txt")
	appendFile(t, path, "aaaaaaaaaa\n")
	task := startSource(t, path, offsets{path: {positionKey: int64(500)}}, "10")
	if lines, _ := pollLines(t, task); strings.Join(lines, ",") != "aaaaaaaaaa" {
		t.Fatalf("a stored position past the end must restart the file: %q", lines)
	}
}

func TestSourceConfigErrors(t *testing.T) {
	_, errs := sourceDef().Parse(map[string]string{"file": "x", "batch.size": "0"})
	if len(errs["topic"]) == 0 || len(errs["batch.size"]) == 0 {
		t.Fatalf("want errors for topic and batch.size: %v", errs)
	}
}

func TestSinkWritesLinesOnFlush(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.txt")
	task := NewSink().(*Sink).NewTask().(*SinkTask)
	ctx := context.Background()
	if err := task.Start(ctx, nil, map[string]string{"file": path}); err != nil {
		t.Fatal(err)
	}
	recs := []connect.SinkRecord{
		{Record: connect.Record{Value: "text"}},
		{Record: connect.Record{Value: []byte("bytes")}},
		{Record: connect.Record{Value: nil}},
		{Record: connect.Record{Value: int64(42)}},
	}
	if err := task.Put(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Fatalf("lines written before Flush: %q", b)
	}
	if err := task.Flush(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "text\nbytes\nnull\n42\n" {
		t.Fatalf("file holds %q", b)
	}
	if err := task.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// Before Flush, what the sink has written to the file (when its buffer
// filled up) ends at a line boundary: a crash leaves whole lines only.
func TestSinkWritesWholeLinesOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.txt")
	task := NewSink().(*Sink).NewTask().(*SinkTask)
	ctx := context.Background()
	if err := task.Start(ctx, nil, map[string]string{"file": path}); err != nil {
		t.Fatal(err)
	}
	defer task.Stop(ctx)
	line := strings.Repeat("x", 98) // 99 bytes with '\n': never divides the buffer size
	for _, recs := range []int{30_000, 1, 7_777} {
		batch := make([]connect.SinkRecord, recs)
		for i := range batch {
			batch[i].Value = line
		}
		if err := task.Put(ctx, batch); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size()%99 != 0 {
			t.Fatalf("after Put of %d records the file holds %d bytes: a partial line", recs, st.Size())
		}
	}
	long := strings.Repeat("y", 3<<20) // longer than the buffer: written whole
	if err := task.Put(ctx, []connect.SinkRecord{{Record: connect.Record{Value: long}}}); err != nil {
		t.Fatal(err)
	}
	if err := task.Flush(ctx, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := (30_000+1+7_777)*99 + len(long) + 1; len(b) != want || !strings.HasSuffix(string(b), long+"\n") {
		t.Fatalf("file holds %d bytes, want %d ending with the long line", len(b), want)
	}
}
