// Package plugins is the boundary between the worker and connector plugins:
// connectors run as go-plugin subprocesses speaking gRPC (pluginpb). The
// plugin side is Serve, which a connector binary's main calls; the host side
// (host.go) discovers plugin binaries, launches and supervises their
// processes, and turns a crash or a gRPC error into a readable task error.
package plugins

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/tributary-data/tributary/plugins/pluginpb"
)

// ProtocolVersion is the version of pluginpb's protocol. Frozen: a change
// that an older worker or plugin could misread needs a new version (and a
// host that speaks both for a while).
const ProtocolVersion = 1

// Handshake is the go-plugin handshake: a binary started without this
// cookie in its environment exits with a message saying it is a plugin, and
// a plugin of another protocol version is refused by the host.
var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "TRIBUTARY_PLUGIN",
	MagicCookieValue: "c0nnect0r-v1-5d2a9f0e",
}

// pluginName is the single plugin kind a binary serves.
const pluginName = "connector"

// BinaryPrefix is the file name prefix of plugin binaries in plugin.path.
const BinaryPrefix = "tributary-connector-"

// grpcPlugin adapts pluginpb to go-plugin on both sides.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl pluginpb.PluginServer // plugin side only
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pluginpb.RegisterPluginServer(s, p.impl)
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pluginpb.NewPluginClient(c), nil
}
