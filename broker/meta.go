package broker

// The broker's own metadata, <data.dir>/meta.json (format version 1):
//
//	{"version":1,"cluster_id":"<22 chars base64url>","node_id":1,"producer_id_block_end":4000}
//
// producer_id_block_end is the first producer id NOT yet handed out durably:
// ids are given out from memory in blocks of producerIDBlock, and the file is
// rewritten (atomically: tmp file, fsync, rename, fsync dir) before an id of a
// new block is returned, so ids are never reused across restarts.

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/tributary-data/tributary/broker/commitlog"
)

const (
	metaVersion     = 1
	producerIDBlock = 1000
)

type metaFile struct {
	Version            int    `json:"version"`
	ClusterID          string `json:"cluster_id"`
	NodeID             int32  `json:"node_id"`
	ProducerIDBlockEnd int64  `json:"producer_id_block_end"`
}

// brokerMeta owns meta.json and the producer id allocator.
type brokerMeta struct {
	fs   commitlog.FS
	path string

	mu     sync.Mutex
	m      metaFile
	nextID int64
}

func openMeta(fs commitlog.FS, dir string, nodeID int32) (*brokerMeta, error) {
	bm := &brokerMeta{fs: fs, path: filepath.Join(dir, "meta.json")}
	buf, err := commitlog.ReadFile(fs, bm.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		var id [16]byte
		if _, err := rand.Read(id[:]); err != nil {
			return nil, err
		}
		bm.m = metaFile{Version: metaVersion, ClusterID: base64.RawURLEncoding.EncodeToString(id[:]), NodeID: nodeID}
		if err := bm.write(); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("broker: read %s: %w", bm.path, err)
	default:
		if err := json.Unmarshal(buf, &bm.m); err != nil {
			return nil, fmt.Errorf("broker: %s is corrupt (%v): restore it from a backup, or remove it to get a new cluster id", bm.path, err)
		}
		if bm.m.Version != metaVersion {
			return nil, fmt.Errorf("broker: %s has format version %d; this broker reads %d", bm.path, bm.m.Version, metaVersion)
		}
		if bm.m.NodeID != nodeID {
			return nil, fmt.Errorf("broker: data dir belongs to node.id %d, configured node.id is %d: fix node.id or use another data dir", bm.m.NodeID, nodeID)
		}
	}
	bm.nextID = bm.m.ProducerIDBlockEnd
	return bm, nil
}

func (bm *brokerMeta) write() error {
	buf, err := json.MarshalIndent(bm.m, "", "  ")
	if err != nil {
		return err
	}
	if err := commitlog.WriteFileAtomic(bm.fs, bm.path, buf); err != nil {
		return fmt.Errorf("broker: write %s: %w", bm.path, err)
	}
	return nil
}

// ClusterID returns the cluster id, fixed when the data dir was created.
func (bm *brokerMeta) ClusterID() string { return bm.m.ClusterID }

// NextProducerID hands out a never-used producer id.
func (bm *brokerMeta) NextProducerID() (int64, error) {
	bm.mu.Lock()
	defer bm.mu.Unlock()
	if bm.nextID >= bm.m.ProducerIDBlockEnd {
		bm.m.ProducerIDBlockEnd += producerIDBlock
		if err := bm.write(); err != nil {
			bm.m.ProducerIDBlockEnd -= producerIDBlock
			return 0, err
		}
	}
	id := bm.nextID
	bm.nextID++
	return id, nil
}
