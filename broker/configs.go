package broker

// DescribeConfigs v0-v4 (topics, this broker, broker loggers: none),
// AlterConfigs v0-v2 and IncrementalAlterConfigs v0-v1 (topics only; broker
// settings come from the broker's config file and flags). Topic config
// changes are validated, persisted (topic.json) and applied live.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary-data/tributary/broker/topics"
)

const (
	resourceTopic        = 2
	resourceBroker       = 4
	resourceBrokerLogger = 8
)

func (b *Broker) describeTopicConfigs(overrides map[string]string, names []string, synonyms, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	defaults := b.topics.Defaults()
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, d := range topics.Defs() {
		if len(want) > 0 && !want[d.Name] {
			continue
		}
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name = d.Name
		v, src := defaults.Effective(overrides, d.Name)
		c.Value = strp(v)
		c.ConfigType = kmsg.ConfigType(d.Type)
		switch src {
		case topics.SourceTopic:
			c.Source = kmsg.ConfigSourceDynamicTopicConfig
		case topics.SourceBroker:
			c.Source = kmsg.ConfigSourceStaticBrokerConfig
		default:
			c.Source = kmsg.ConfigSourceDefaultConfig
			c.IsDefault = true
		}
		if docs {
			c.Documentation = strp(d.Doc)
		}
		if synonyms {
			add := func(name, value string, s kmsg.ConfigSource) {
				sy := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				sy.Name, sy.Value, sy.Source = name, strp(value), s
				c.ConfigSynonyms = append(c.ConfigSynonyms, sy)
			}
			if ov, ok := overrides[d.Name]; ok {
				add(d.Name, ov, kmsg.ConfigSourceDynamicTopicConfig)
			}
			if bv, ok := defaults[d.Name]; ok {
				add(d.BrokerKey, bv, kmsg.ConfigSourceStaticBrokerConfig)
			}
			add(d.BrokerKey, d.Default, kmsg.ConfigSourceDefaultConfig)
		}
		out = append(out, c)
	}
	return out
}

func (b *Broker) brokerConfigs() map[string]string {
	c := b.cfg
	m := map[string]string{
		"node.id":                          strconv.Itoa(int(c.NodeID)),
		"broker.id":                        strconv.Itoa(int(c.NodeID)),
		"listeners":                        "PLAINTEXT://" + c.Listen,
		"advertised.listeners":             "PLAINTEXT://" + b.advertise,
		"log.dirs":                         c.DataDir,
		"auto.create.topics.enable":        strconv.FormatBool(c.AutoCreateTopics),
		"num.partitions":                   strconv.Itoa(int(c.DefaultPartitions)),
		"default.replication.factor":       "1",
		"offsets.topic.replication.factor": "1",
		"socket.request.max.bytes":         strconv.Itoa(int(c.SocketRequestMaxBytes)),
		"log.retention.check.interval.ms":  strconv.FormatInt(c.MaintenanceInterval.Milliseconds(), 10),
		"group.min.session.timeout.ms":     strconv.FormatInt(c.MinSessionTimeout.Milliseconds(), 10),
		"group.max.session.timeout.ms":     strconv.FormatInt(c.MaxSessionTimeout.Milliseconds(), 10),
		"group.initial.rebalance.delay.ms": strconv.FormatInt(c.InitialRebalanceDelay.Milliseconds(), 10),
		"offsets.retention.minutes":        strconv.FormatInt(int64(c.OffsetsRetention.Minutes()), 10),
	}
	for _, d := range topics.Defs() {
		v, _ := b.topics.Defaults().Effective(nil, d.Name)
		m[d.BrokerKey] = v
	}
	return m
}

func (b *Broker) handleDescribeConfigs(req *kmsg.DescribeConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		switch rr.ResourceType {
		case resourceTopic:
			t, ok := b.topics.Get(rr.ResourceName)
			if !ok {
				sr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				sr.ErrorMessage = strp(fmt.Sprintf("topic %q does not exist", rr.ResourceName))
				break
			}
			sr.Configs = b.describeTopicConfigs(t.Configs(), rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
		case resourceBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(b.cfg.NodeID)) {
				sr.ErrorCode = kerr.InvalidRequest.Code
				sr.ErrorMessage = strp(fmt.Sprintf("unknown broker %q: this broker is node %d", rr.ResourceName, b.cfg.NodeID))
				break
			}
			want := map[string]bool{}
			for _, n := range rr.ConfigNames {
				want[n] = true
			}
			all := b.brokerConfigs()
			keys := make([]string, 0, len(all))
			for k := range all {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if len(want) > 0 && !want[k] {
					continue
				}
				c := kmsg.NewDescribeConfigsResponseResourceConfig()
				c.Name, c.Value, c.ReadOnly = k, strp(all[k]), true
				c.Source = kmsg.ConfigSourceStaticBrokerConfig
				c.ConfigType = kmsg.ConfigTypeString
				sr.Configs = append(sr.Configs, c)
			}
		case resourceBrokerLogger:
			// No per-logger levels on the broker: an empty list.
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
			sr.ErrorMessage = strp(fmt.Sprintf("resource type %d is not supported", rr.ResourceType))
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

// applyTopicConfigs validates and (unless validateOnly) stores new overrides.
func (b *Broker) applyTopicConfigs(name string, next map[string]string, validateOnly bool) (int16, *string) {
	t, ok := b.topics.Get(name)
	if !ok {
		return kerr.UnknownTopicOrPartition.Code, strp(fmt.Sprintf("topic %q does not exist", name))
	}
	norm, err := topics.ValidateOverrides(next)
	if err != nil {
		return b.errorCode(err), strp(err.Error())
	}
	if validateOnly {
		return 0, nil
	}
	if err := b.topics.SetConfigs(t.Name, norm); err != nil {
		b.log.Error("storing topic configs failed", "topic", name, "err", err)
		return b.errorCode(err), strp(err.Error())
	}
	b.log.Info("topic configs changed", "topic", name, "configs", norm)
	return 0, nil
}

var errBrokerAlter = "dynamic broker configs are not supported: set broker keys in the broker's config file or with --set and restart"

func (b *Broker) handleAlterConfigs(req *kmsg.AlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		if rr.ResourceType != resourceTopic {
			sr.ErrorCode, sr.ErrorMessage = kerr.InvalidRequest.Code, strp(errBrokerAlter)
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		next := map[string]string{}
		for _, c := range rr.Configs {
			if c.Value != nil {
				next[c.Name] = *c.Value
			}
		}
		sr.ErrorCode, sr.ErrorMessage = b.applyTopicConfigs(rr.ResourceName, next, req.ValidateOnly)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

func (b *Broker) handleIncrementalAlterConfigs(req *kmsg.IncrementalAlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		if rr.ResourceType != resourceTopic {
			sr.ErrorCode, sr.ErrorMessage = kerr.InvalidRequest.Code, strp(errBrokerAlter)
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		t, ok := b.topics.Get(rr.ResourceName)
		if !ok {
			sr.ErrorCode = kerr.UnknownTopicOrPartition.Code
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		next := t.Configs()
		for _, c := range rr.Configs {
			val := ""
			if c.Value != nil {
				val = *c.Value
			}
			switch c.Op {
			case kmsg.IncrementalAlterConfigOpSet:
				next[c.Name] = val
			case kmsg.IncrementalAlterConfigOpDelete:
				delete(next, c.Name)
			case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
				d, ok := topics.LookupDef(c.Name)
				if !ok || d.Type != topics.TypeList {
					sr.ErrorCode = kerr.InvalidConfig.Code
					sr.ErrorMessage = strp(fmt.Sprintf("%s is not a list config: APPEND and SUBTRACT need one", c.Name))
					break
				}
				cur, _ := b.topics.Defaults().Effective(next, c.Name)
				next[c.Name] = editList(cur, val, c.Op == kmsg.IncrementalAlterConfigOpAppend)
			default:
				sr.ErrorCode = kerr.InvalidRequest.Code
				sr.ErrorMessage = strp(fmt.Sprintf("unknown config operation %d", c.Op))
			}
		}
		if sr.ErrorCode == 0 {
			sr.ErrorCode, sr.ErrorMessage = b.applyTopicConfigs(rr.ResourceName, next, req.ValidateOnly)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

func editList(cur, vals string, add bool) string {
	var out []string
	has := map[string]bool{}
	for _, v := range strings.Split(cur, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
			has[v] = true
		}
	}
	for _, v := range strings.Split(vals, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if add && !has[v] {
			out = append(out, v)
			has[v] = true
		}
		if !add && has[v] {
			for i := range out {
				if out[i] == v {
					out = append(out[:i], out[i+1:]...)
					break
				}
			}
			delete(has, v)
		}
	}
	return strings.Join(out, ",")
}
