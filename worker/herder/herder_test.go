package herder_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-data/tributary/internal/testkafka"
)

// TestHerderREST runs one broker and one worker and drives them over the
// REST API; every subtest uses its own connector names, topics and files.
func TestHerderREST(t *testing.T) {
	addr := testkafka.Broker(t)
	w := startWorker(t, addr, "rest-test")

	t.Run("Pipeline", func(t *testing.T) { w := w.on(t); testPipeline(t, w) })
	t.Run("Errors", func(t *testing.T) { w := w.on(t); testErrors(t, w) })
	t.Run("PluginsAndValidate", func(t *testing.T) { w := w.on(t); testPluginsAndValidate(t, w) })
	t.Run("PauseResume", func(t *testing.T) { w := w.on(t); testPauseResume(t, w) })
	t.Run("StopAndOffsets", func(t *testing.T) { w := w.on(t); testStopAndOffsets(t, w) })
	t.Run("Reconfigure", func(t *testing.T) { w := w.on(t); testReconfigure(t, w) })
	t.Run("StopThenResetAtOnce", func(t *testing.T) { w := w.on(t); testStopThenResetAtOnce(t, w) })
	t.Run("Restart", func(t *testing.T) { w := w.on(t); testRestart(t, w) })
	t.Run("Secrets", func(t *testing.T) { w := w.on(t); testSecrets(t, w) })
	t.Run("Delete", func(t *testing.T) { w := w.on(t); testDelete(t, w) })
}

// on returns a view of the worker reporting failures to t.
func (w *worker) on(t *testing.T) *worker {
	return &worker{t: t, h: w.h, srv: w.srv, url: w.url, id: w.id}
}

func testPipeline(t *testing.T, w *worker) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	lines := numbered("line", 1, 5)
	appendLines(t, in, lines...)

	// POST a source with the short class name: 201, a Location, the info.
	code, raw, hdr := w.do("POST", "/connectors", `{"name":"pipe-src","config":{"connector.class":"FileStreamSource",
		"file":"`+in+`","topic":"pipe-lines","tasks.max":1,
		"value.converter":"org.apache.kafka.connect.storage.StringConverter"}}`)
	if code != http.StatusCreated {
		t.Fatalf("POST source: %d %s", code, raw)
	}
	if loc := hdr.Get("Location"); !strings.HasSuffix(loc, "/connectors/pipe-src") {
		t.Errorf("Location %q, want .../connectors/pipe-src", loc)
	}
	var info struct {
		Name   string            `json:"name"`
		Config map[string]string `json:"config"`
		Tasks  []struct {
			Connector string `json:"connector"`
			Task      int    `json:"task"`
		} `json:"tasks"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &info); err != nil {
		t.Fatal(err)
	}
	if info.Name != "pipe-src" || info.Type != "source" || info.Config["name"] != "pipe-src" || info.Config["file"] != in || info.Config["tasks.max"] != "1" {
		t.Errorf("POST source answered %s", raw)
	}

	// The sink with Kafka's class name.
	code, raw, hdr = w.do("POST", "/connectors", createRequest{Name: "pipe-sink", Config: map[string]string{
		"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector", "file": out, "topics": "pipe-lines",
		"value.converter": "org.apache.kafka.connect.storage.StringConverter",
	}})
	if code != http.StatusCreated || !strings.HasSuffix(hdr.Get("Location"), "/connectors/pipe-sink") {
		t.Fatalf("POST sink: %d %s (Location %q)", code, raw, hdr.Get("Location"))
	}
	if !strings.Contains(string(raw), `"type":"sink"`) {
		t.Errorf("POST sink answered %s, want type sink", raw)
	}

	waitLines(t, out, lines)
	appendLines(t, in, "line-6")

	// The worker's root and health endpoints.
	var root struct {
		Version        string `json:"version"`
		KafkaClusterID string `json:"kafka_cluster_id"`
	}
	w.expect("GET", "/", nil, http.StatusOK, &root)
	if root.Version != "test" || root.KafkaClusterID == "" {
		t.Errorf("GET / = %+v", root)
	}
	w.expect("GET", "/health", nil, http.StatusOK, nil)
	waitLines(t, out, append(lines, "line-6"))

	// GET /connectors lists both (sorted names).
	var names []string
	w.expect("GET", "/connectors", nil, http.StatusOK, &names)
	if !slices.Contains(names, "pipe-src") || !slices.Contains(names, "pipe-sink") {
		t.Errorf("GET /connectors = %v", names)
	}

	// ?expand=status&expand=info: {name: {"status": ..., "info": ...}}.
	var expanded map[string]struct {
		Status *connectorStatus `json:"status"`
		Info   *struct {
			Name   string            `json:"name"`
			Config map[string]string `json:"config"`
			Type   string            `json:"type"`
		} `json:"info"`
	}
	w.expect("GET", "/connectors?expand=status&expand=info", nil, http.StatusOK, &expanded)
	for _, n := range []string{"pipe-src", "pipe-sink"} {
		e, ok := expanded[n]
		if !ok || e.Status == nil || e.Info == nil {
			t.Fatalf("expanded list has no status and info for %s: %+v", n, expanded)
		}
		if e.Status.Name != n || e.Status.Connector.State != "RUNNING" || e.Info.Name != n || e.Info.Config["connector.class"] == "" {
			t.Errorf("expanded %s = status %+v info %+v", n, *e.Status, *e.Info)
		}
	}
	if e := expanded["pipe-sink"]; e.Info.Type != "sink" || e.Status.Type != "sink" {
		t.Errorf("pipe-sink type: info %q status %q", e.Info.Type, e.Status.Type)
	}
	var onlyStatus map[string]map[string]json.RawMessage
	w.expect("GET", "/connectors?expand=status", nil, http.StatusOK, &onlyStatus)
	if _, hasInfo := onlyStatus["pipe-src"]["info"]; hasInfo || onlyStatus["pipe-src"]["status"] == nil {
		t.Errorf("?expand=status gave %v", onlyStatus["pipe-src"])
	}

	// Status: RUNNING on this worker, one task RUNNING.
	st := w.status("pipe-src")
	if st.Name != "pipe-src" || st.Type != "source" || st.Connector.State != "RUNNING" || st.Connector.WorkerID != w.id {
		t.Errorf("status = %+v, want RUNNING on %s", st, w.id)
	}
	if len(st.Tasks) != 1 || st.Tasks[0].ID != 0 || st.Tasks[0].State != "RUNNING" || st.Tasks[0].WorkerID != w.id {
		t.Errorf("task statuses = %+v", st.Tasks)
	}
	var ts taskState
	w.expect("GET", "/connectors/pipe-src/tasks/0/status", nil, http.StatusOK, &ts)
	if ts.State != "RUNNING" || ts.ID != 0 {
		t.Errorf("task 0 status = %+v", ts)
	}
	w.expectError("GET", "/connectors/pipe-src/tasks/7/status", nil, http.StatusNotFound)

	// Tasks: the file source's task config carries the file and topic.
	var tasks []struct {
		ID struct {
			Connector string `json:"connector"`
			Task      int    `json:"task"`
		} `json:"id"`
		Config map[string]string `json:"config"`
	}
	w.expect("GET", "/connectors/pipe-src/tasks", nil, http.StatusOK, &tasks)
	if len(tasks) != 1 || tasks[0].ID.Connector != "pipe-src" || tasks[0].ID.Task != 0 ||
		tasks[0].Config["file"] != in || tasks[0].Config["topic"] != "pipe-lines" {
		t.Errorf("tasks = %+v", tasks)
	}

	// Config: exactly what was posted, plus the name; numbers kept as text.
	var cfg map[string]string
	w.expect("GET", "/connectors/pipe-src/config", nil, http.StatusOK, &cfg)
	want := map[string]string{"name": "pipe-src", "connector.class": "FileStreamSource", "file": in, "topic": "pipe-lines",
		"tasks.max": "1", "value.converter": "org.apache.kafka.connect.storage.StringConverter"}
	if fmt.Sprint(cfg) != fmt.Sprint(want) {
		t.Errorf("config = %v, want %v", cfg, want)
	}

	// A sink's topics are those it consumes.
	var topics map[string]struct {
		Topics []string `json:"topics"`
	}
	w.expect("GET", "/connectors/pipe-sink/topics", nil, http.StatusOK, &topics)
	if got := topics["pipe-sink"].Topics; !slices.Equal(got, []string{"pipe-lines"}) {
		t.Errorf("topics = %v", topics)
	}
	// A source's are those it produced to (recorded in the status topic).
	deadline := time.Now().Add(10 * time.Second)
	for {
		topics = nil
		w.expect("GET", "/connectors/pipe-src/topics", nil, http.StatusOK, &topics)
		if slices.Equal(topics["pipe-src"].Topics, []string{"pipe-lines"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("source topics = %v, want [pipe-lines]", topics)
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.expect("PUT", "/connectors/pipe-src/topics/reset", nil, http.StatusAccepted, nil)
}

func testErrors(t *testing.T, w *worker) {
	dir := t.TempDir()
	file := filepath.Join(dir, "in.txt")

	// An unknown class: 400 listing the installed classes.
	w.expectError("POST", "/connectors", createRequest{Name: "err-unknown", Config: map[string]string{
		"connector.class": "com.example.NoSuchConnector", "file": file, "topic": "t"}},
		http.StatusBadRequest, "com.example.NoSuchConnector",
		"io.tributary.connect.file.FileStreamSourceConnector", "io.tributary.connect.file.FileStreamSinkConnector")

	// A missing required key: 400 naming it.
	w.expectError("POST", "/connectors", createRequest{Name: "err-nofile", Config: map[string]string{
		"connector.class": "FileStreamSource", "topic": "t"}},
		http.StatusBadRequest, "file", "/connector-plugins/{connectorType}/config/validate")
	// A sink without topics nor topics.regex.
	w.expectError("POST", "/connectors", createRequest{Name: "err-notopics", Config: map[string]string{
		"connector.class": "FileStreamSink", "file": file}},
		http.StatusBadRequest, "topics")
	// A bad tasks.max and an unknown converter.
	w.expectError("POST", "/connectors", createRequest{Name: "err-values", Config: map[string]string{
		"connector.class": "FileStreamSource", "file": file, "topic": "t", "tasks.max": "0",
		"value.converter": "com.example.NoConverter"}},
		http.StatusBadRequest, "tasks.max", "value.converter", "2 error(s)")
	// Nothing was created by the failed requests.
	var names []string
	w.expect("GET", "/connectors", nil, http.StatusOK, &names)
	for _, n := range names {
		if strings.HasPrefix(n, "err-") {
			t.Errorf("a rejected connector was created: %v", names)
		}
	}
	// Malformed JSON and a missing name.
	w.expectError("POST", "/connectors", `{"name":"err-json","config":{`, http.StatusBadRequest)
	w.expectError("POST", "/connectors", `{"config":{"connector.class":"FileStreamSource"}}`, http.StatusBadRequest)

	// An existing name: 409.
	w.createSource("err-dup", file, "err-dup-lines")
	w.expectError("POST", "/connectors", createRequest{Name: "err-dup", Config: map[string]string{
		"connector.class": "FileStreamSource", "file": file, "topic": "other"}},
		http.StatusConflict, "err-dup")

	// Concurrent creations of one name: one 201, the others 409.
	codes := make([]int, 5)
	errs := make([]error, len(codes))
	var wg sync.WaitGroup
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := `{"name":"err-race","config":{"connector.class":"FileStreamSource","file":"` + file + `","topic":"err-race"}}`
			resp, err := http.Post(w.url+"/connectors", "application/json", strings.NewReader(body))
			if err != nil {
				errs[i] = err
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	slices.Sort(codes)
	if want := []int{201, 409, 409, 409, 409}; !slices.Equal(codes, want) {
		t.Errorf("concurrent POSTs of one name answered %v, want %v", codes, want)
	}
	w.expect("DELETE", "/connectors/err-race", nil, http.StatusNoContent, nil)

	// Unknown connectors: 404 for every per-connector path.
	for _, p := range []struct{ method, path string }{
		{"GET", "/connectors/no-such"}, {"GET", "/connectors/no-such/status"}, {"GET", "/connectors/no-such/config"},
		{"GET", "/connectors/no-such/tasks"}, {"DELETE", "/connectors/no-such"}, {"PUT", "/connectors/no-such/pause"},
		{"POST", "/connectors/no-such/restart"}, {"GET", "/connectors/no-such/offsets"},
	} {
		w.expectError(p.method, p.path, nil, http.StatusNotFound, "no-such")
	}

	// PUT config with another name in the body than in the URL: 400.
	w.expectError("PUT", "/connectors/err-dup/config", map[string]string{
		"name": "other-name", "connector.class": "FileStreamSource", "file": file, "topic": "t"},
		http.StatusBadRequest, "other-name", "err-dup")

	// PUT config of a new name creates it (201); of an existing one updates it (200).
	code, raw, hdr := w.do("PUT", "/connectors/err-put/config", map[string]string{
		"connector.class": "FileStreamSource", "file": file, "topic": "err-put-lines"})
	if code != http.StatusCreated || !strings.HasSuffix(hdr.Get("Location"), "/connectors/err-put") {
		t.Errorf("PUT config of a new connector: %d %s", code, raw)
	}
	var info struct {
		Config map[string]string `json:"config"`
	}
	w.expect("PUT", "/connectors/err-put/config", map[string]string{
		"connector.class": "FileStreamSource", "file": file, "topic": "err-put-lines2"}, http.StatusOK, &info)
	if info.Config["topic"] != "err-put-lines2" || info.Config["name"] != "err-put" {
		t.Errorf("PUT config answered %v", info.Config)
	}
	// PATCH config: a null deletes a key, the result is validated.
	w.expectError("PATCH", "/connectors/err-put/config", `{"file":null}`, http.StatusBadRequest, "file")
	w.expect("PATCH", "/connectors/err-put/config", `{"batch.size":"10"}`, http.StatusOK, &info)
	if info.Config["batch.size"] != "10" || info.Config["topic"] != "err-put-lines2" {
		t.Errorf("PATCH config answered %v", info.Config)
	}
	w.expect("DELETE", "/connectors/err-put", nil, http.StatusNoContent, nil)
	w.expect("DELETE", "/connectors/err-dup", nil, http.StatusNoContent, nil)
}

func testPluginsAndValidate(t *testing.T, w *worker) {
	type pluginInfo struct {
		Class   string `json:"class"`
		Type    string `json:"type"`
		Version string `json:"version"`
	}
	var plugins []pluginInfo
	w.expect("GET", "/connector-plugins", nil, http.StatusOK, &plugins)
	byClass := map[string]pluginInfo{}
	for _, p := range plugins {
		byClass[p.Class] = p
		if p.Type != "source" && p.Type != "sink" {
			t.Errorf("GET /connector-plugins lists a %s (%s): connectors only by default", p.Type, p.Class)
		}
	}
	if p := byClass["io.tributary.connect.file.FileStreamSourceConnector"]; p.Type != "source" || p.Version == "" {
		t.Errorf("plugins = %+v, want the file source", plugins)
	}
	if p := byClass["io.tributary.connect.file.FileStreamSinkConnector"]; p.Type != "sink" {
		t.Errorf("plugins = %+v, want the file sink", plugins)
	}
	var all []pluginInfo
	w.expect("GET", "/connector-plugins?connectorsOnly=false", nil, http.StatusOK, &all)
	types := map[string]bool{}
	for _, p := range all {
		types[p.Type] = true
	}
	if !types["converter"] || !types["transformation"] || !types["source"] {
		t.Errorf("connectorsOnly=false gave types %v", types)
	}

	// The plugin's own config definition (alias and Kafka's name work).
	type keyInfo struct {
		Name         string  `json:"name"`
		Type         string  `json:"type"`
		Required     bool    `json:"required"`
		DefaultValue *string `json:"default_value"`
		Importance   string  `json:"importance"`
	}
	for _, p := range []string{"FileStreamSource", "org.apache.kafka.connect.file.FileStreamSourceConnector"} {
		var keys []keyInfo
		w.expect("GET", "/connector-plugins/"+p+"/config", nil, http.StatusOK, &keys)
		found := map[string]keyInfo{}
		for _, k := range keys {
			found[k.Name] = k
		}
		if f := found["file"]; f.Type != "STRING" || !f.Required || f.Importance != "HIGH" {
			t.Errorf("%s config: file = %+v (all %+v)", p, f, keys)
		}
		if b := found["batch.size"]; b.Type != "INT" || b.Required || b.DefaultValue == nil || *b.DefaultValue != "2000" {
			t.Errorf("%s config: batch.size = %+v", p, b)
		}
	}
	w.expectError("GET", "/connector-plugins/NoSuchPlugin/config", nil, http.StatusNotFound, "NoSuchPlugin")

	// Validate: 200 with Kafka's ConfigInfos, errors per key.
	type validation struct {
		Name       string   `json:"name"`
		ErrorCount int      `json:"error_count"`
		Groups     []string `json:"groups"`
		Configs    []struct {
			Definition *keyInfo `json:"definition"`
			Value      struct {
				Name              string   `json:"name"`
				Value             *string  `json:"value"`
				RecommendedValues []string `json:"recommended_values"`
				Errors            []string `json:"errors"`
				Visible           bool     `json:"visible"`
			} `json:"value"`
		} `json:"configs"`
	}
	var v validation
	w.expect("PUT", "/connector-plugins/FileStreamSource/config/validate", map[string]string{
		"connector.class": "FileStreamSource", "name": "validate-me", "topic": "t", "tasks.max": "0"}, http.StatusOK, &v)
	if v.ErrorCount != 2 {
		t.Errorf("error_count = %d, want 2 (file missing, tasks.max < 1): %+v", v.ErrorCount, v)
	}
	if v.Name != "FileStreamSource" || !slices.Contains(v.Groups, "Common") {
		t.Errorf("name %q groups %v", v.Name, v.Groups)
	}
	vals := map[string]int{}
	for i, c := range v.Configs {
		vals[c.Value.Name] = i
	}
	for key, wantErr := range map[string]bool{"file": true, "tasks.max": true, "topic": false, "name": false, "connector.class": false} {
		i, ok := vals[key]
		if !ok {
			t.Errorf("validate has no entry for %s: %+v", key, v.Configs)
			continue
		}
		c := v.Configs[i]
		if c.Definition == nil || c.Definition.Name != key || c.Value.Errors == nil || c.Value.RecommendedValues == nil || !c.Value.Visible {
			t.Errorf("entry %s = %+v", key, c)
		}
		if got := len(c.Value.Errors) > 0; got != wantErr {
			t.Errorf("entry %s errors = %q, want errors: %v", key, c.Value.Errors, wantErr)
		}
	}
	if i, ok := vals["topic"]; ok && (v.Configs[i].Value.Value == nil || *v.Configs[i].Value.Value != "t") {
		t.Errorf("topic's value = %v, want t", v.Configs[i].Value.Value)
	}
	if i, ok := vals["batch.size"]; !ok || v.Configs[i].Value.Value == nil || *v.Configs[i].Value.Value != "2000" {
		t.Errorf("batch.size should show its default 2000: %+v", v.Configs)
	}

	// A valid config: no errors.
	w.expect("PUT", "/connector-plugins/FileStreamSource/config/validate", map[string]string{
		"connector.class": "FileStreamSource", "name": "validate-me", "topic": "t", "file": "/tmp/x"}, http.StatusOK, &v)
	if v.ErrorCount != 0 {
		t.Errorf("a valid config has error_count %d: %+v", v.ErrorCount, v)
	}
	// Validating an unknown plugin is an error listing the installed ones.
	w.expectError("PUT", "/connector-plugins/NoSuch/config/validate", map[string]string{"connector.class": "NoSuch"},
		http.StatusBadRequest, "io.tributary.connect.file.FileStreamSourceConnector")
}

func testPauseResume(t *testing.T, w *worker) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	appendLines(t, in, numbered("p", 1, 3)...)
	w.createSource("pause-src", in, "pause-lines")
	w.createSink("pause-sink", out, "pause-lines")
	waitLines(t, out, numbered("p", 1, 3))

	w.expect("PUT", "/connectors/pause-src/pause", nil, http.StatusAccepted, nil)
	w.waitState("pause-src", "PAUSED", "PAUSED")
	// Pausing twice is fine.
	w.expect("PUT", "/connectors/pause-src/pause", nil, http.StatusAccepted, nil)
	appendLines(t, in, numbered("p", 4, 6)...)
	// Nothing moves while paused: give the pipeline several poll and flush
	// periods (the source polls every 200 ms, offsets flush every 200 ms).
	time.Sleep(1500 * time.Millisecond)
	if got := readLines(t, out); len(got) != 3 {
		t.Fatalf("lines were delivered while the source was paused: %q", got)
	}
	if st := w.status("pause-src"); st.Connector.State != "PAUSED" {
		t.Errorf("status while paused = %+v", st)
	}

	w.expect("PUT", "/connectors/pause-src/resume", nil, http.StatusAccepted, nil)
	w.waitState("pause-src", "RUNNING", "RUNNING")
	waitLines(t, out, numbered("p", 1, 6))

	// Pausing the sink holds records in Kafka until it resumes.
	w.expect("PUT", "/connectors/pause-sink/pause", nil, http.StatusAccepted, nil)
	w.waitState("pause-sink", "PAUSED", "PAUSED")
	appendLines(t, in, "p-7")
	time.Sleep(1500 * time.Millisecond)
	if got := readLines(t, out); len(got) != 6 {
		t.Fatalf("lines were delivered while the sink was paused: %q", got)
	}
	w.expect("PUT", "/connectors/pause-sink/resume", nil, http.StatusAccepted, nil)
	waitLines(t, out, numbered("p", 1, 7))
	w.expect("DELETE", "/connectors/pause-src", nil, http.StatusNoContent, nil)
	w.expect("DELETE", "/connectors/pause-sink", nil, http.StatusNoContent, nil)
}

func testStopAndOffsets(t *testing.T, w *worker) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	first := numbered("s", 1, 3)
	appendLines(t, in, first...)
	w.createSource("off-src", in, "off-lines")
	w.createSink("off-sink", out, "off-lines")
	waitLines(t, out, first)

	// Source offsets: Kafka's FileStreamSource partition and offset.
	size := int64(len(strings.Join(first, "\n") + "\n"))
	waitFor(t, 10*time.Second, "the source offset to reach the end of the file", func() (bool, string) {
		o := w.offsets("off-src")
		if len(o.Offsets) != 1 {
			return false, fmt.Sprintf("%+v", o)
		}
		pos, _ := o.Offsets[0].Offset["position"].(float64)
		return o.Offsets[0].Partition["filename"] == in && int64(pos) == size, fmt.Sprintf("%+v", o)
	})
	// Sink offsets: the consumer group's committed offsets.
	waitFor(t, 10*time.Second, "the sink's committed offset to be 3", func() (bool, string) {
		o := w.offsets("off-sink")
		if len(o.Offsets) != 1 {
			return false, fmt.Sprintf("%+v", o)
		}
		p, off := o.Offsets[0].Partition, o.Offsets[0].Offset
		return p["kafka_topic"] == "off-lines" && p["kafka_partition"] == float64(0) && off["kafka_offset"] == float64(3), fmt.Sprintf("%+v", o)
	})

	// Offsets can only be changed once the connector is stopped.
	for _, c := range []struct{ name, offsets string }{
		{"off-src", fmt.Sprintf(`{"offsets":[{"partition":{"filename":%q},"offset":{"position":0}}]}`, in)},
		{"off-sink", `{"offsets":[{"partition":{"kafka_topic":"off-lines","kafka_partition":0},"offset":{"kafka_offset":0}}]}`},
	} {
		w.expectError("DELETE", "/connectors/"+c.name+"/offsets", nil, http.StatusBadRequest, "STOPPED")
		w.expectError("PATCH", "/connectors/"+c.name+"/offsets", c.offsets, http.StatusBadRequest, "STOPPED")
	}
	w.expect("PUT", "/connectors/off-src/pause", nil, http.StatusAccepted, nil)
	w.expectError("DELETE", "/connectors/off-src/offsets", nil, http.StatusBadRequest, "STOPPED")

	// Stop: 204, STOPPED, and (as Kafka Connect) no tasks.
	w.expect("PUT", "/connectors/off-src/stop", nil, http.StatusNoContent, nil)
	if st := w.waitState("off-src", "STOPPED", ""); len(st.Tasks) != 0 {
		t.Errorf("a stopped connector shows tasks %+v", st.Tasks)
	}
	if raw := w.expect("GET", "/connectors/off-src/tasks", nil, http.StatusOK, nil); strings.TrimSpace(string(raw)) != "[]" {
		t.Errorf("GET tasks of a stopped connector = %s", raw)
	}
	w.expectError("GET", "/connectors/off-src/tasks/0/status", nil, http.StatusNotFound)
	// Reset the source's offsets, resume: the file is read again.
	var msg struct {
		Message string `json:"message"`
	}
	w.expect("DELETE", "/connectors/off-src/offsets", nil, http.StatusOK, &msg)
	if !strings.Contains(msg.Message, "reset") {
		t.Errorf("DELETE offsets message %q", msg.Message)
	}
	if o := w.offsets("off-src"); len(o.Offsets) != 0 {
		t.Errorf("offsets after the reset = %+v", o)
	}
	w.expect("PUT", "/connectors/off-src/resume", nil, http.StatusAccepted, nil)
	w.waitState("off-src", "RUNNING", "RUNNING")
	waitLines(t, out, concat(first, first))

	// Alter the source's offset: resume after the first line.
	w.expect("PUT", "/connectors/off-src/stop", nil, http.StatusNoContent, nil)
	w.waitState("off-src", "STOPPED", "")
	line1 := len(first[0]) + 1
	w.expect("PATCH", "/connectors/off-src/offsets", fmt.Sprintf(`{"offsets":[{"partition":{"filename":%q},"offset":{"position":%d}}]}`, in, line1), http.StatusOK, &msg)
	if !strings.Contains(msg.Message, "altered") {
		t.Errorf("PATCH offsets message %q", msg.Message)
	}
	o := w.offsets("off-src")
	if len(o.Offsets) != 1 || o.Offsets[0].Offset["position"] != float64(line1) {
		t.Errorf("offsets after PATCH = %+v", o)
	}
	w.expect("PUT", "/connectors/off-src/resume", nil, http.StatusAccepted, nil)
	waitLines(t, out, concat(first, first, first[1:]))

	// Alter the sink's committed offset: the records from offset 6 (the
	// last two) are delivered again.
	w.expect("PUT", "/connectors/off-sink/stop", nil, http.StatusNoContent, nil)
	w.waitState("off-sink", "STOPPED", "")
	w.expectError("PATCH", "/connectors/off-sink/offsets", `{"offsets":[{"partition":{"kafka_topic":"off-lines"},"offset":{"kafka_offset":1}}]}`,
		http.StatusBadRequest, "kafka_partition")
	w.expect("PATCH", "/connectors/off-sink/offsets", `{"offsets":[{"partition":{"kafka_topic":"off-lines","kafka_partition":0},"offset":{"kafka_offset":6}}]}`, http.StatusOK, nil)
	if o := w.offsets("off-sink"); len(o.Offsets) != 1 || o.Offsets[0].Offset["kafka_offset"] != float64(6) {
		t.Errorf("sink offsets after PATCH = %+v", o)
	}
	w.expect("PUT", "/connectors/off-sink/resume", nil, http.StatusAccepted, nil)
	waitLines(t, out, concat(first, first, first[1:], first[1:]))

	// Reset the sink's offsets: everything is delivered again.
	w.expect("PUT", "/connectors/off-sink/stop", nil, http.StatusNoContent, nil)
	w.waitState("off-sink", "STOPPED", "")
	w.expect("DELETE", "/connectors/off-sink/offsets", nil, http.StatusOK, nil)
	if o := w.offsets("off-sink"); len(o.Offsets) != 0 {
		t.Errorf("sink offsets after DELETE = %+v", o)
	}
	w.expect("PUT", "/connectors/off-sink/resume", nil, http.StatusAccepted, nil)
	all := concat(first, first, first[1:])
	waitLines(t, out, concat(all, first[1:], all))

	w.expect("DELETE", "/connectors/off-src", nil, http.StatusNoContent, nil)
	w.expect("DELETE", "/connectors/off-sink", nil, http.StatusNoContent, nil)
}

// testReconfigure changes a running source's file with PUT .../config: its
// task is restarted with the new config.
func testReconfigure(t *testing.T, w *worker) {
	dir := t.TempDir()
	in1, in2, out := filepath.Join(dir, "in1.txt"), filepath.Join(dir, "in2.txt"), filepath.Join(dir, "out.txt")
	appendLines(t, in1, "one-1")
	appendLines(t, in2, "two-1")
	w.createSource("reconf-src", in1, "reconf-lines")
	w.createSink("reconf-sink", out, "reconf-lines")
	waitLines(t, out, []string{"one-1"})

	w.expect("PUT", "/connectors/reconf-src/config", map[string]string{
		"connector.class": "FileStreamSource", "file": in2, "topic": "reconf-lines",
		"value.converter": "org.apache.kafka.connect.storage.StringConverter"}, http.StatusOK, nil)
	waitLines(t, out, []string{"one-1", "two-1"})
	appendLines(t, in1, "one-2")
	appendLines(t, in2, "two-2")
	waitLines(t, out, []string{"one-1", "two-1", "two-2"})
	var tasks []struct {
		Config map[string]string `json:"config"`
	}
	w.expect("GET", "/connectors/reconf-src/tasks", nil, http.StatusOK, &tasks)
	if len(tasks) != 1 || tasks[0].Config["file"] != in2 {
		t.Errorf("tasks after the update = %+v", tasks)
	}
	w.waitState("reconf-src", "RUNNING", "RUNNING")
	w.expect("DELETE", "/connectors/reconf-src", nil, http.StatusNoContent, nil)
	w.expect("DELETE", "/connectors/reconf-sink", nil, http.StatusNoContent, nil)
}

// testStopThenResetAtOnce resets a source's offsets right after PUT
// .../stop, without waiting for the STOPPED status, as scripts do: the
// reset must not be undone by the stopping task's last offset flush.
func testStopThenResetAtOnce(t *testing.T, w *worker) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	appendLines(t, in, "q-1", "q-2")
	w.createSource("quick-src", in, "quick-lines")
	w.createSink("quick-sink", out, "quick-lines")
	want := []string{"q-1", "q-2"}
	waitLines(t, out, want)
	for range 2 {
		w.expect("PUT", "/connectors/quick-src/stop", nil, http.StatusNoContent, nil)
		w.expect("DELETE", "/connectors/quick-src/offsets", nil, http.StatusOK, nil)
		w.expect("PUT", "/connectors/quick-src/resume", nil, http.StatusAccepted, nil)
		want = append(want, "q-1", "q-2")
		waitLines(t, out, want)
	}
	w.expect("DELETE", "/connectors/quick-src", nil, http.StatusNoContent, nil)
	w.expect("DELETE", "/connectors/quick-sink", nil, http.StatusNoContent, nil)
}

func testRestart(t *testing.T, w *worker) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	appendLines(t, in, "r-1")
	w.createSource("restart-src", in, "restart-lines")
	w.createSink("restart-sink", out, "restart-lines")
	waitLines(t, out, []string{"r-1"})

	w.expect("POST", "/connectors/restart-src/restart", nil, http.StatusNoContent, nil)
	w.waitState("restart-src", "RUNNING", "RUNNING")

	var st connectorStatus
	w.expect("POST", "/connectors/restart-src/restart?includeTasks=true", nil, http.StatusAccepted, &st)
	if st.Name != "restart-src" || st.Connector.State != "RESTARTING" || len(st.Tasks) != 1 || st.Tasks[0].State != "RESTARTING" {
		t.Errorf("restart?includeTasks=true answered %+v, want everything RESTARTING", st)
	}
	// onlyFailed with nothing failed restarts nothing: the answer says so.
	st = connectorStatus{}
	w.expect("POST", "/connectors/restart-sink/restart?includeTasks=true&onlyFailed=true", nil, http.StatusAccepted, &st)
	if st.Connector.State != "RUNNING" || len(st.Tasks) != 1 || st.Tasks[0].State != "RUNNING" {
		t.Errorf("restart?onlyFailed=true answered %+v, want nothing restarting", st)
	}
	w.expect("POST", "/connectors/restart-sink/tasks/0/restart", nil, http.StatusNoContent, nil)
	w.expectError("POST", "/connectors/restart-sink/tasks/3/restart", nil, http.StatusNotFound)

	// Both run again and the pipeline still moves lines.
	w.waitState("restart-src", "RUNNING", "RUNNING")
	w.waitState("restart-sink", "RUNNING", "RUNNING")
	appendLines(t, in, "r-2")
	waitLines(t, out, []string{"r-1", "r-2"})

	// A task that fails (its file is a directory) is FAILED with a trace;
	// restart?onlyFailed restarts it and not the healthy connector.
	bad := filepath.Join(dir, "bad")
	if err := os.Mkdir(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	w.expect("POST", "/connectors", createRequest{Name: "restart-fail", Config: map[string]string{
		"connector.class": "FileStreamSource", "file": bad, "topic": "restart-lines",
		"value.converter": "org.apache.kafka.connect.storage.StringConverter"}}, http.StatusCreated, nil)
	st = w.waitState("restart-fail", "RUNNING", "FAILED")
	if !strings.Contains(st.Tasks[0].Trace, bad) {
		t.Errorf("the failed task's trace %q does not name its file", st.Tasks[0].Trace)
	}
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	appendLines(t, bad, "r-3")
	st = connectorStatus{}
	w.expect("POST", "/connectors/restart-fail/restart?includeTasks=true&onlyFailed=true", nil, http.StatusAccepted, &st)
	if st.Connector.State != "RUNNING" || len(st.Tasks) != 1 || st.Tasks[0].State != "RESTARTING" || st.Tasks[0].Trace != "" {
		t.Errorf("restart?onlyFailed=true answered %+v, want only the task RESTARTING", st)
	}
	w.waitState("restart-fail", "RUNNING", "RUNNING")
	waitLines(t, out, []string{"r-1", "r-2", "r-3"})

	for _, n := range []string{"restart-src", "restart-sink", "restart-fail"} {
		w.expect("DELETE", "/connectors/"+n, nil, http.StatusNoContent, nil)
	}
}

func testSecrets(t *testing.T, w *worker) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "secret-in.txt"), filepath.Join(dir, "out.txt")
	t.Setenv("TRIB_TEST_FILE", in)
	appendLines(t, in, "x-1", "x-2")
	w.expect("POST", "/connectors", createRequest{Name: "secret-src", Config: map[string]string{
		"connector.class": "FileStreamSource", "file": "${env:TRIB_TEST_FILE}", "topic": "secret-lines",
		"value.converter": "org.apache.kafka.connect.storage.StringConverter"}}, http.StatusCreated, nil)
	w.createSink("secret-sink", out, "secret-lines")
	// The task reads the resolved file.
	waitLines(t, out, []string{"x-1", "x-2"})

	// The REST API shows the placeholder, never the resolved value.
	var cfg map[string]string
	w.expect("GET", "/connectors/secret-src/config", nil, http.StatusOK, &cfg)
	if cfg["file"] != "${env:TRIB_TEST_FILE}" {
		t.Errorf("GET config shows file=%q, want the placeholder", cfg["file"])
	}
	for _, p := range []string{"/connectors/secret-src", "/connectors/secret-src/tasks", "/connectors?expand=info"} {
		_, raw, _ := w.do("GET", p, nil)
		if strings.Contains(string(raw), in) {
			t.Errorf("GET %s shows the resolved secret: %s", p, raw)
		}
	}

	// A config naming an unset variable is refused, naming it.
	w.expectError("POST", "/connectors", createRequest{Name: "secret-unset", Config: map[string]string{
		"connector.class": "FileStreamSource", "file": "${env:TRIB_TEST_UNSET_VAR}", "topic": "t"}},
		http.StatusBadRequest, "TRIB_TEST_UNSET_VAR")

	// When the variable disappears from the worker, the connector fails
	// at its next start, with a trace naming the variable.
	if err := os.Unsetenv("TRIB_TEST_FILE"); err != nil {
		t.Fatal(err)
	}
	w.expect("PUT", "/connectors/secret-src/pause", nil, http.StatusAccepted, nil)
	st := w.waitState("secret-src", "FAILED", "FAILED")
	if !strings.Contains(st.Connector.Trace, "TRIB_TEST_FILE") || !strings.Contains(st.Tasks[0].Trace, "TRIB_TEST_FILE") {
		t.Errorf("FAILED traces %q / %q do not name the variable", st.Connector.Trace, st.Tasks[0].Trace)
	}
	// Stopped, it needs no secret: STOPPED, not FAILED.
	w.expect("PUT", "/connectors/secret-src/stop", nil, http.StatusNoContent, nil)
	w.waitState("secret-src", "STOPPED", "")
	w.expect("DELETE", "/connectors/secret-src", nil, http.StatusNoContent, nil)

	// ${file:path:key} reads a key of a properties file.
	in2, props := filepath.Join(dir, "in2.txt"), filepath.Join(dir, "secrets.properties")
	writeFile := func(content string) {
		t.Helper()
		if err := os.WriteFile(props, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeFile("in.path=" + in2 + "\n")
	appendLines(t, in2, "y-1")
	w.expect("POST", "/connectors", createRequest{Name: "secret-file-src", Config: map[string]string{
		"connector.class": "FileStreamSource", "file": "${file:" + props + ":in.path}", "topic": "secret-lines",
		"value.converter": "org.apache.kafka.connect.storage.StringConverter"}}, http.StatusCreated, nil)
	waitLines(t, out, []string{"x-1", "x-2", "y-1"})
	// The key disappears: at the next reconcile (here: another config
	// change) the connector and its task fail, naming the key.
	writeFile("other=1\n")
	w.expect("PUT", "/connectors/secret-sink/config", map[string]string{
		"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector", "file": out, "topics": "secret-lines",
		"value.converter": "org.apache.kafka.connect.storage.StringConverter"}, http.StatusOK, nil)
	st = w.waitState("secret-file-src", "FAILED", "FAILED")
	if !strings.Contains(st.Connector.Trace, "in.path") {
		t.Errorf("FAILED trace %q does not name the missing key", st.Connector.Trace)
	}
	// Fixed, a restart resolves it again and runs it. (Any later
	// reconcile, i.e. any config change, would retry it too.)
	writeFile("in.path=" + in2 + "\n")
	appendLines(t, in2, "y-2")
	st = connectorStatus{}
	w.expect("POST", "/connectors/secret-file-src/restart?includeTasks=true", nil, http.StatusAccepted, &st)
	if st.Connector.State != "RESTARTING" || len(st.Tasks) != 1 || st.Tasks[0].State != "RESTARTING" {
		t.Errorf("restart answered %+v", st)
	}
	w.waitState("secret-file-src", "RUNNING", "RUNNING")
	waitLines(t, out, []string{"x-1", "x-2", "y-1", "y-2"})
	w.expect("DELETE", "/connectors/secret-file-src", nil, http.StatusNoContent, nil)
	w.expect("DELETE", "/connectors/secret-sink", nil, http.StatusNoContent, nil)
}

func testDelete(t *testing.T, w *worker) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	appendLines(t, in, "d-1")
	w.createSource("del-src", in, "del-lines")
	w.createSink("del-sink", out, "del-lines")
	waitLines(t, out, []string{"d-1"})

	w.expect("DELETE", "/connectors/del-src", nil, http.StatusNoContent, nil)
	var names []string
	w.expect("GET", "/connectors", nil, http.StatusOK, &names)
	if slices.Contains(names, "del-src") || !slices.Contains(names, "del-sink") {
		t.Errorf("GET /connectors after DELETE = %v", names)
	}
	w.expectError("GET", "/connectors/del-src/status", nil, http.StatusNotFound, "del-src")
	w.expectError("GET", "/connectors/del-src", nil, http.StatusNotFound, "del-src")
	var expanded map[string]json.RawMessage
	w.expect("GET", "/connectors?expand=status", nil, http.StatusOK, &expanded)
	if _, ok := expanded["del-src"]; ok {
		t.Errorf("the deleted connector is still listed: %s", expanded["del-src"])
	}
	// Its task is gone: lines appended now are not read.
	appendLines(t, in, "d-2")
	time.Sleep(1200 * time.Millisecond)
	if got := readLines(t, out); len(got) != 1 {
		t.Errorf("a deleted source still delivers: %q", got)
	}
	// The name can be used again, and (offsets survive a delete, as in
	// Kafka Connect) the new source carries on after d-1.
	w.createSource("del-src", in, "del-lines")
	waitLines(t, out, []string{"d-1", "d-2"})
	w.expect("DELETE", "/connectors/del-src", nil, http.StatusNoContent, nil)
	w.expect("DELETE", "/connectors/del-sink", nil, http.StatusNoContent, nil)
	w.expect("GET", "/connectors", nil, http.StatusOK, &names)
	if slices.Contains(names, "del-src") || slices.Contains(names, "del-sink") {
		t.Errorf("GET /connectors after deleting both = %v", names)
	}
}
