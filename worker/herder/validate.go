package herder

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/tributary-data/tributary/connect"
	"github.com/tributary-data/tributary/connect/converter"
	"github.com/tributary-data/tributary/connect/transforms"
	"github.com/tributary-data/tributary/plugins/pluginpb"
	"github.com/tributary-data/tributary/worker/rest"
)

// commonDef declares the keys every connector config may have (Kafka
// Connect's ConnectorConfig, SinkConnectorConfig and error handling keys).
func commonDef(sink bool) *connect.ConfigDef {
	d := connect.NewConfigDef().
		Define(connect.ConfigKey{Name: "name", Type: connect.TypeString, Required: true, Importance: connect.High, Group: "Common", OrderInGroup: 1, DisplayName: "Connector name", Validator: connect.NonEmptyString(), Doc: "Globally unique name to use for this connector."}).
		Define(connect.ConfigKey{Name: "connector.class", Type: connect.TypeString, Required: true, Importance: connect.High, Group: "Common", OrderInGroup: 2, DisplayName: "Connector class", Doc: "Name or alias of the connector class, e.g. FileStreamSource or org.apache.kafka.connect.file.FileStreamSourceConnector."}).
		Define(connect.ConfigKey{Name: "tasks.max", Type: connect.TypeInt, Default: "1", Importance: connect.High, Group: "Common", OrderInGroup: 3, DisplayName: "Tasks max", Validator: connect.AtLeast(1), Doc: "Maximum number of tasks to use for this connector."}).
		Define(connect.ConfigKey{Name: "key.converter", Type: connect.TypeClass, Importance: connect.Low, Group: "Common", OrderInGroup: 4, DisplayName: "Key converter class", Doc: "Converter for record keys (default: JsonConverter)."}).
		Define(connect.ConfigKey{Name: "value.converter", Type: connect.TypeClass, Importance: connect.Low, Group: "Common", OrderInGroup: 5, DisplayName: "Value converter class", Doc: "Converter for record values (default: JsonConverter)."}).
		Define(connect.ConfigKey{Name: "header.converter", Type: connect.TypeClass, Importance: connect.Low, Group: "Common", OrderInGroup: 6, DisplayName: "Header converter class", Doc: "Converter for header values (default: StringConverter)."}).
		Define(connect.ConfigKey{Name: "transforms", Type: connect.TypeList, Default: "", Importance: connect.Low, Group: "Transforms", OrderInGroup: 1, DisplayName: "Transforms", Doc: "Aliases of the transformations to apply to records, in order."}).
		Define(connect.ConfigKey{Name: "predicates", Type: connect.TypeList, Default: "", Importance: connect.Low, Group: "Predicates", OrderInGroup: 1, DisplayName: "Predicates", Doc: "Aliases of the predicates used by the transformations."}).
		Define(connect.ConfigKey{Name: "errors.retry.timeout", Type: connect.TypeLong, Default: "0", Importance: connect.Medium, Group: "Error Handling", OrderInGroup: 1, DisplayName: "Retry Timeout for Errors", Validator: connect.AtLeast(int64(-1)), Doc: "How long a call that failed with a retriable error is retried, in milliseconds; 0: not retried, -1: retried forever."}).
		Define(connect.ConfigKey{Name: "errors.retry.delay.max.ms", Type: connect.TypeLong, Default: "60000", Importance: connect.Medium, Group: "Error Handling", OrderInGroup: 2, DisplayName: "Maximum Delay Between Retries for Errors", Validator: connect.AtLeast(int64(1)), Doc: "The longest wait between two retries (the backoff doubles from 300 ms)."}).
		Define(connect.ConfigKey{Name: "errors.tolerance", Type: connect.TypeString, Default: "none", Importance: connect.Medium, Group: "Error Handling", OrderInGroup: 3, DisplayName: "Error Tolerance", Validator: connect.OneOf("none", "all"), Doc: "none: a record that fails conversion or a transformation fails the task; all: it is skipped (and sent to the dead letter queue of a sink)."}).
		Define(connect.ConfigKey{Name: "errors.log.enable", Type: connect.TypeBoolean, Default: "false", Importance: connect.Medium, Group: "Error Handling", OrderInGroup: 4, DisplayName: "Log Errors", Doc: "Log every tolerated failure (they are always counted in the metrics)."}).
		Define(connect.ConfigKey{Name: "errors.log.include.messages", Type: connect.TypeBoolean, Default: "false", Importance: connect.Medium, Group: "Error Handling", OrderInGroup: 5, DisplayName: "Log Error Details", Doc: "Include the failed record's coordinates in the log."})
	if sink {
		d = d.
			Define(connect.ConfigKey{Name: "topics", Type: connect.TypeList, Default: "", Importance: connect.High, Group: "Common", OrderInGroup: 4, DisplayName: "Topics", Doc: "Topics to consume; give this or topics.regex."}).
			Define(connect.ConfigKey{Name: "topics.regex", Type: connect.TypeString, Default: "", Importance: connect.High, Group: "Common", OrderInGroup: 4, DisplayName: "Topics regex", Doc: "Regular expression of the topics to consume; give this or topics."}).
			Define(connect.ConfigKey{Name: "errors.deadletterqueue.topic.name", Type: connect.TypeString, Default: "", Importance: connect.Medium, Group: "Error Handling", OrderInGroup: 6, DisplayName: "Dead Letter Queue Topic Name", Doc: "Topic receiving records that failed with errors.tolerance=all."}).
			Define(connect.ConfigKey{Name: "errors.deadletterqueue.topic.replication.factor", Type: connect.TypeShort, Default: "3", Importance: connect.Medium, Group: "Error Handling", OrderInGroup: 7, DisplayName: "Dead Letter Queue Topic Replication Factor", Doc: "Accepted for compatibility; the broker's default applies when the topic is created."}).
			Define(connect.ConfigKey{Name: "errors.deadletterqueue.context.headers.enable", Type: connect.TypeBoolean, Default: "false", Importance: connect.Medium, Group: "Error Handling", OrderInGroup: 8, DisplayName: "Enable Error Context Headers", Doc: "Add __connect.errors.* headers describing the failure to dead letter queue records."})
	}
	return d
}

// classInfo finds an installed class, or a BadRequest listing the installed ones.
func (h *Herder) classInfo(class string) (*pluginpb.ConnectorClass, error) {
	c, ok := h.registry.Class(class)
	if !ok {
		var names []string
		for _, c := range h.registry.Classes() {
			names = append(names, c.Class)
		}
		sort.Strings(names)
		return nil, rest.BadRequest("Failed to find any class that implements Connector and which name matches %s, available connectors are: %s", class, strings.Join(names, ", "))
	}
	return c, nil
}

func keyInfos(c *pluginpb.ConnectorClass) ([]connect.ConfigKeyInfo, error) {
	var keys []connect.ConfigKeyInfo
	if err := json.Unmarshal(c.ConfigDefJson, &keys); err != nil {
		return nil, fmt.Errorf("plugin %s sent an unreadable config definition: %w", c.Class, err)
	}
	return keys, nil
}

// validate validates a connector config: the common keys, the converter
// and transform settings, and the connector's own ConfigDef and Validate
// (run in a plugin process).
func (h *Herder) validate(ctx context.Context, config map[string]string) (connect.ConfigInfos, error) {
	class := config["connector.class"]
	c, err := h.classInfo(class)
	if err != nil {
		return connect.ConfigInfos{}, err
	}
	sink := c.Type == pluginpb.ConnectorType_CONNECTOR_TYPE_SINK
	common := commonDef(sink)
	infos := common.ValidateAll(config)
	extra := map[string][]string{}
	if sink {
		t, r := strings.TrimSpace(config["topics"]), strings.TrimSpace(config["topics.regex"])
		switch {
		case t == "" && r == "":
			extra["topics"] = append(extra["topics"], "Must configure one of topics or topics.regex")
		case t != "" && r != "":
			extra["topics"] = append(extra["topics"], "topics and topics.regex are mutually exclusive options, but both are set.")
		}
	}
	for _, k := range []struct {
		key, def string
		isKey    bool
	}{{"key.converter", "org.apache.kafka.connect.json.JsonConverter", true}, {"value.converter", "org.apache.kafka.connect.json.JsonConverter", false}, {"header.converter", "org.apache.kafka.connect.storage.StringConverter", false}} {
		if _, err := converter.FromConfig(config, k.key, k.isKey, k.def); err != nil {
			extra[k.key] = append(extra[k.key], err.Error())
		}
	}
	if _, err := transforms.NewChain(config); err != nil {
		extra["transforms"] = append(extra["transforms"], err.Error())
	}
	infos = connect.MergeErrors(infos, extra)

	keys, err := keyInfos(c)
	if err != nil {
		return connect.ConfigInfos{}, err
	}
	resolved, err := resolveSecrets(config)
	var pluginErrs map[string][]string
	if err != nil {
		pluginErrs = map[string][]string{"": {err.Error()}}
	} else if pluginErrs, err = h.pluginValidate(ctx, c, resolved); err != nil {
		return connect.ConfigInfos{}, err
	}
	groups := common.Groups()
	seen := map[string]bool{}
	for _, g := range groups {
		seen[g] = true
	}
	have := map[string]bool{}
	for _, i := range infos {
		have[i.Value.Name] = true
	}
	for i := range keys {
		k := keys[i]
		if have[k.Name] {
			continue
		}
		if k.Group != nil && !seen[*k.Group] {
			groups = append(groups, *k.Group)
			seen[*k.Group] = true
		}
		v := connect.ConfigValueInfo{Name: k.Name, RecommendedValues: []string{}, Errors: []string{}, Visible: true}
		if s, ok := config[k.Name]; ok {
			if k.Type == string(connect.TypePassword) {
				s = "[hidden]"
			}
			v.Value = &s
		} else if k.DefaultValue != nil {
			d := *k.DefaultValue
			v.Value = &d
		}
		infos = append(infos, connect.ConfigInfo{Definition: &keys[i], Value: v})
	}
	infos = connect.MergeErrors(infos, pluginErrs)
	out := connect.NewConfigInfos(class, groups, infos)
	if whole := pluginErrs[""]; len(whole) > 0 {
		out.ErrorCount += len(whole)
		out.Configs = append(out.Configs, connect.ConfigInfo{Value: connect.ConfigValueInfo{Name: "", RecommendedValues: []string{}, Errors: whole, Visible: true}})
	}
	return out, nil
}

// pluginValidate runs the connector's ConfigDef and Validate in the plugin
// binary's validator process (plugins.Validators).
func (h *Herder) pluginValidate(ctx context.Context, c *pluginpb.ConnectorClass, config map[string]string) (map[string][]string, error) {
	path, _, err := h.registry.Binary(c.Class)
	if err != nil {
		return nil, err
	}
	resp, err := h.validators.Validate(ctx, path, &pluginpb.ValidateRequest{Class: c.Class, Config: config})
	if err != nil {
		return nil, fmt.Errorf("validating with %s: %w", c.Class, err)
	}
	out := map[string][]string{}
	for k, e := range resp.Errors {
		out[k] = e.Messages
	}
	return out, nil
}

// validationError renders a failed validation as Kafka Connect does.
func validationError(infos connect.ConfigInfos) error {
	var msgs []string
	for _, c := range infos.Configs {
		for _, e := range c.Value.Errors {
			if c.Value.Name == "" {
				msgs = append(msgs, e)
			} else {
				msgs = append(msgs, c.Value.Name+": "+e)
			}
		}
	}
	return rest.BadRequest("Connector configuration is invalid and contains the following %d error(s):\n%s\nYou can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`", len(msgs), strings.Join(msgs, "\n"))
}

// passwordKeys returns every name (incl. aliases) of a class's
// PASSWORD-typed keys, for masking.
func (h *Herder) passwordKeys(class string) map[string]bool {
	out := map[string]bool{}
	if c, ok := h.registry.Class(class); ok {
		for _, k := range c.PasswordKeys {
			out[k] = true
		}
	}
	return out
}

func (h *Herder) mask(config map[string]string) map[string]string {
	pw := h.passwordKeys(config["connector.class"])
	out := make(map[string]string, len(config))
	for k, v := range config {
		if pw[k] && !strings.HasPrefix(v, "${") {
			v = "[hidden]"
		}
		out[k] = v
	}
	return out
}
