package main

// tributary topics list|create|describe|delete: kafka-topics.sh for any
// Kafka broker (this repo's, Apache Kafka, Redpanda), over the Kafka
// protocol through franz-go's kadm. The Kafka client setup and error
// formatting shared by topics, produce and consume live here too.

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const topicsSynopsis = "tributary topics list|create|describe|delete --brokers HOST:PORT[,HOST:PORT...] [flags]"

func runTopics(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	subs := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"list":     runTopicsList,
		"create":   runTopicsCreate,
		"describe": runTopicsDescribe,
		"delete":   runTopicsDelete,
	}
	if len(args) > 0 {
		if sub, ok := subs[args[0]]; ok {
			return sub(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "Usage: %s\n\n"+
		"  list                       topics with partitions and replication factor\n"+
		"  create TOPIC...            create topics (--partitions, --replication-factor, --config k=v)\n"+
		"  describe [TOPIC...]        partitions (leader, replicas, ISR, offsets) and non-default configs\n"+
		"  delete TOPIC...            delete topics\n\n"+
		"Run 'tributary topics <subcommand> --help' for its flags.\n", topicsSynopsis)
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		return flag.ErrHelp
	}
	if len(args) > 0 {
		return fmt.Errorf("%w: unknown subcommand %q: want list, create, describe or delete", errUsage, args[0])
	}
	return fmt.Errorf("%w: want a subcommand: list, create, describe or delete", errUsage)
}

func runTopicsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newKafkaFlagSet("topics list", stderr)
	brokers := brokersFlag(fs)
	internal := fs.Bool("internal", false, "include internal topics (__consumer_offsets, ...)")
	setUsage(fs, "tributary topics list --brokers HOST:PORT [--internal]", nil)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	adm, err := newAdmin(*brokers)
	if err != nil {
		return err
	}
	defer adm.Close()
	tds, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return kafkaErr(err, "", *brokers, nil)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tREPLICATION FACTOR")
	for _, td := range tds.Sorted() {
		if td.IsInternal && !*internal {
			continue
		}
		if td.Err != nil {
			fmt.Fprintf(tw, "%s\t-\t-\t%v\n", td.Topic, td.Err)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\n", td.Topic, len(td.Partitions), td.Partitions.NumReplicas())
	}
	return tw.Flush()
}

func runTopicsCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newKafkaFlagSet("topics create", stderr)
	brokers := brokersFlag(fs)
	partitions := fs.Int("partitions", -1, "number of partitions (-1: the broker's num.partitions)")
	rf := fs.Int("replication-factor", -1, "replicas per partition (-1: the broker's default.replication.factor)")
	var configs multiFlag
	fs.Var(&configs, "config", "topic config key=value, repeatable (e.g. cleanup.policy=compact, retention.ms=86400000)")
	ifNotExists := fs.Bool("if-not-exists", false, "succeed when the topic already exists")
	setUsage(fs, "tributary topics create TOPIC... --brokers HOST:PORT [--partitions N] [--replication-factor N] [--config key=value ...] [--if-not-exists]", nil)
	names, err := parseFlagsArgs(fs, args)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return fmt.Errorf("%w: name the topic to create: tributary topics create TOPIC", errUsage)
	}
	if *partitions == 0 || *partitions < -1 || *partitions > 1<<20 {
		return fmt.Errorf("%w: --partitions %d: want at least 1 (or -1 for the broker's default)", errUsage, *partitions)
	}
	if *rf == 0 || *rf < -1 || *rf > 1<<15-1 {
		return fmt.Errorf("%w: --replication-factor %d: want at least 1 (or -1 for the broker's default)", errUsage, *rf)
	}
	cfg := map[string]*string{}
	for _, kv := range configs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return fmt.Errorf("%w: --config %q: want key=value", errUsage, kv)
		}
		cfg[strings.TrimSpace(k)] = kadm.StringPtr(v)
	}
	adm, err := newAdmin(*brokers)
	if err != nil {
		return err
	}
	defer adm.Close()
	resps, err := adm.CreateTopics(ctx, int32(*partitions), int16(*rf), cfg, names...)
	if err != nil {
		return kafkaErr(err, "", *brokers, nil)
	}
	var failed []string
	for _, name := range names {
		r, ok := resps[name]
		switch {
		case !ok:
			failed = append(failed, fmt.Sprintf("topic %q: the broker's answer does not mention it", name))
		case errors.Is(r.Err, kerr.TopicAlreadyExists) && *ifNotExists:
			fmt.Fprintf(stderr, "topic %q already exists\n", name)
		case r.Err != nil:
			failed = append(failed, fmt.Sprintf("topic %q: %v", name, kafkaErr(r.Err, r.ErrMessage, *brokers, createHint)))
		default:
			fmt.Fprintf(stdout, "created topic %q", name)
			if r.NumPartitions > 0 {
				fmt.Fprintf(stdout, " (partitions %d, replication factor %d)", r.NumPartitions, r.ReplicationFactor)
			}
			fmt.Fprintln(stdout)
		}
	}
	return joinFailures(failed)
}

func runTopicsDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newKafkaFlagSet("topics delete", stderr)
	brokers := brokersFlag(fs)
	ifExists := fs.Bool("if-exists", false, "succeed when the topic does not exist")
	setUsage(fs, "tributary topics delete TOPIC... --brokers HOST:PORT [--if-exists]", nil)
	names, err := parseFlagsArgs(fs, args)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return fmt.Errorf("%w: name the topic to delete: tributary topics delete TOPIC", errUsage)
	}
	adm, err := newAdmin(*brokers)
	if err != nil {
		return err
	}
	defer adm.Close()
	resps, err := adm.DeleteTopics(ctx, names...)
	if err != nil {
		return kafkaErr(err, "", *brokers, nil)
	}
	var failed []string
	for _, name := range names {
		r, ok := resps[name]
		switch {
		case !ok:
			failed = append(failed, fmt.Sprintf("topic %q: the broker's answer does not mention it", name))
		case errors.Is(r.Err, kerr.UnknownTopicOrPartition) && *ifExists:
			fmt.Fprintf(stderr, "topic %q does not exist\n", name)
		case r.Err != nil:
			failed = append(failed, fmt.Sprintf("topic %q: %v", name, kafkaErr(r.Err, r.ErrMessage, *brokers, deleteHint)))
		default:
			fmt.Fprintf(stdout, "deleted topic %q\n", name)
		}
	}
	return joinFailures(failed)
}

func runTopicsDescribe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newKafkaFlagSet("topics describe", stderr)
	brokers := brokersFlag(fs)
	allConfigs := fs.Bool("all-configs", false, "show every config with its source, not only the topic's own settings")
	setUsage(fs, "tributary topics describe [TOPIC...] --brokers HOST:PORT [--all-configs]  (no TOPIC: every non-internal topic)", nil)
	names, err := parseFlagsArgs(fs, args)
	if err != nil {
		return err
	}
	adm, err := newAdmin(*brokers)
	if err != nil {
		return err
	}
	defer adm.Close()
	tds, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return kafkaErr(err, "", *brokers, nil)
	}
	for _, name := range names {
		if td, ok := tds[name]; ok && td.Err != nil {
			return fmt.Errorf("topic %q: %w", name, kafkaErr(td.Err, "", *brokers, describeHint))
		}
	}
	if len(names) == 0 {
		names = tds.Names()
	}
	if len(names) == 0 {
		fmt.Fprintln(stderr, "no topics")
		return nil
	}
	configs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return kafkaErr(err, "", *brokers, nil)
	}
	starts, err := adm.ListStartOffsets(ctx, names...)
	if err != nil {
		return kafkaErr(err, "", *brokers, nil)
	}
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return kafkaErr(err, "", *brokers, nil)
	}
	for i, name := range names {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		td := tds[name]
		fmt.Fprintf(stdout, "Topic: %s\tPartitions: %d\tReplicationFactor: %d", name, len(td.Partitions), td.Partitions.NumReplicas())
		if td.ID != (kadm.TopicID{}) {
			fmt.Fprintf(stdout, "\tTopicId: %s", base64.RawURLEncoding.EncodeToString(td.ID[:])) // as Kafka prints a Uuid
		}
		if td.IsInternal {
			fmt.Fprint(stdout, "\tInternal: true")
		}
		fmt.Fprintln(stdout)
		rc, err := configs.On(name, nil)
		switch {
		case err == nil && rc.Err != nil:
			fmt.Fprintf(stdout, "Configs: %v\n", kafkaErr(rc.Err, rc.ErrMessage, *brokers, nil))
		case err == nil:
			writeConfigs(stdout, rc.Configs, *allConfigs)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PARTITION\tLEADER\tREPLICAS\tISR\tSTART OFFSET\tEND OFFSET")
		for _, p := range td.Partitions.Sorted() {
			start, end := offsetText(starts, name, p.Partition), offsetText(ends, name, p.Partition)
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s", p.Partition, p.Leader, int32List(p.Replicas), int32List(p.ISR), start, end)
			if p.Err != nil {
				fmt.Fprintf(tw, "\t%v", p.Err)
			}
			fmt.Fprintln(tw)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// writeConfigs prints the topic's own settings (source DYNAMIC_TOPIC_CONFIG,
// what --config set), or every config with its source when all is set.
func writeConfigs(w io.Writer, cs []kadm.Config, all bool) {
	sort.Slice(cs, func(i, j int) bool { return cs[i].Key < cs[j].Key })
	var lines []string
	for _, c := range cs {
		v := c.MaybeValue()
		if c.Sensitive {
			v = "(sensitive)"
		}
		switch {
		case all:
			lines = append(lines, fmt.Sprintf("%s=%s (%s)", c.Key, v, c.Source))
		case c.Source == kmsg.ConfigSourceDynamicTopicConfig:
			lines = append(lines, c.Key+"="+v)
		}
	}
	if len(lines) == 0 {
		fmt.Fprintln(w, "Configs: (none set on the topic)")
		return
	}
	fmt.Fprintln(w, "Configs:")
	for _, l := range lines {
		fmt.Fprintln(w, "  "+l)
	}
}

func offsetText(l kadm.ListedOffsets, topic string, p int32) string {
	o, ok := l.Lookup(topic, p)
	switch {
	case !ok:
		return "?"
	case o.Err != nil:
		return "error: " + o.Err.Error()
	}
	return strconv.FormatInt(o.Offset, 10)
}

func int32List(xs []int32) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(int(x))
	}
	return strings.Join(s, ",")
}

func joinFailures(failed []string) error {
	switch len(failed) {
	case 0:
		return nil
	case 1:
		return errors.New(failed[0])
	}
	return errors.New(strings.Join(failed, "\n  "))
}

// --- Kafka client setup and errors shared by topics, produce and consume.

func newKafkaFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func brokersFlag(fs *flag.FlagSet) *string {
	return fs.String("brokers", "127.0.0.1:9092", "comma-separated HOST:PORT seed brokers of any Kafka cluster")
}

// newKafkaClient opens a franz-go client on the comma-separated seed
// brokers; the caller closes it. A bad --brokers value is a usage error.
func newKafkaClient(brokers string, opts ...kgo.Opt) (*kgo.Client, error) {
	var seeds []string
	for _, s := range strings.Split(brokers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	if len(seeds) == 0 {
		return nil, fmt.Errorf("%w: --brokers is empty: give HOST:PORT[,HOST:PORT...]", errUsage)
	}
	opts = append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ClientID("tributary-cli")}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: --brokers %q: %v", errUsage, brokers, err)
	}
	return cl, nil
}

// newAdmin opens an admin client; the caller closes it.
func newAdmin(brokers string) (*kadm.Client, error) {
	cl, err := newKafkaClient(brokers)
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

// missingTopics asks the cluster for the topics' metadata, so that an
// unreachable cluster fails at once instead of after the client's retries,
// and returns the topics that do not exist.
func missingTopics(ctx context.Context, cl *kgo.Client, brokers string, topics []string) ([]string, error) {
	tds, err := kadm.NewClient(cl).ListTopics(ctx, topics...) // shares cl: not closed here
	if err != nil {
		return nil, kafkaErr(err, "", brokers, nil)
	}
	var missing []string
	for _, t := range topics {
		if td, ok := tds[t]; !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
			missing = append(missing, t)
		}
	}
	return missing, nil
}

// Hints for Kafka error codes, by where they happen; kafkaErr falls back to
// generalHint.

func createHint(e *kerr.Error) string {
	switch e {
	case kerr.TopicAlreadyExists:
		return "use --if-not-exists to accept an existing topic"
	case kerr.InvalidReplicationFactor:
		return "--replication-factor cannot exceed the number of brokers (a single tributary broker keeps 1 replica)"
	case kerr.InvalidPartitions:
		return "--partitions must be at least 1"
	case kerr.InvalidConfig:
		return "check the --config keys and values (Kafka topic config names, e.g. cleanup.policy=compact)"
	case kerr.InvalidTopicException:
		return "topic names use letters, digits, '.', '_' and '-', at most 249 characters"
	case kerr.PolicyViolation:
		return "the broker's create.topic.policy rejected the topic"
	}
	return ""
}

func deleteHint(e *kerr.Error) string {
	switch e {
	case kerr.UnknownTopicOrPartition:
		return "use --if-exists to accept a missing topic; 'tributary topics list' shows the topics"
	case kerr.TopicDeletionDisabled:
		return "the broker has delete.topic.enable=false"
	}
	return ""
}

func describeHint(e *kerr.Error) string {
	if e == kerr.UnknownTopicOrPartition {
		return "'tributary topics list' shows the topics"
	}
	return ""
}

func generalHint(e *kerr.Error) string {
	switch e {
	case kerr.UnknownTopicOrPartition:
		return "create the topic first: tributary topics create TOPIC"
	case kerr.TopicAuthorizationFailed:
		return "the broker's ACLs do not allow this client on the topic"
	case kerr.GroupAuthorizationFailed:
		return "the broker's ACLs do not allow this client in the group"
	case kerr.ClusterAuthorizationFailed:
		return "the broker's ACLs do not allow this operation"
	case kerr.MessageTooLarge:
		return "the record exceeds the topic's max.message.bytes"
	case kerr.RecordListTooLarge:
		return "the batch exceeds the topic's max.message.bytes"
	case kerr.NotEnoughReplicas:
		return "fewer in-sync replicas than min.insync.replicas; use --acks 1 or repair the cluster"
	case kerr.NotEnoughReplicasAfterAppend:
		return "fewer in-sync replicas than min.insync.replicas; the record may still be written"
	case kerr.UnsupportedVersion:
		return "the broker is too old for this request"
	case kerr.InvalidRecord:
		return "the broker rejected the record (a compacted topic needs keys: use --key-separator)"
	}
	return ""
}

// kafkaErr formats err for a person: a Kafka error code keeps its name
// (TOPIC_ALREADY_EXISTS) and gains the broker's message and a hint; an
// unreachable broker gets a hint naming --brokers. The result wraps err, so
// errors.Is(result, kerr.TopicAlreadyExists) still holds.
func kafkaErr(err error, brokerMsg, brokers string, hint func(*kerr.Error) string) error {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		msg := "%w"
		if brokerMsg != "" && brokerMsg != ke.Description {
			msg += " (broker: " + strings.ReplaceAll(brokerMsg, "%", "%%") + ")"
		}
		h := ""
		if hint != nil {
			h = hint(ke)
		}
		if h == "" {
			h = generalHint(ke)
		}
		if h != "" {
			msg += "; hint: " + strings.ReplaceAll(h, "%", "%%")
		}
		return fmt.Errorf(msg, err)
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) {
		return fmt.Errorf("%w; hint: is a Kafka broker listening at %s? (--brokers, TRIBUTARY_BROKERS)", err, brokers)
	}
	return err
}

// parseFlagsArgs is parseFlags for commands taking positional arguments
// (topic names) mixed with flags: "create t1 --partitions 3 t2". Arguments
// after "--" are all positional.
func parseFlagsArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	return pos, applyEnv(fs)
}
