package e2ee

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/agwproject/agw/internal/identity"
	"github.com/agwproject/agw/mls"
)

const stateSuffix = ".mlsstate"

// persisted is the plaintext of a state file.
type persisted struct {
	Kind  groupKind `json:"kind"`
	Name  string    `json:"name"`
	State []byte    `json:"state"`
}

func stateFile(gid string) string {
	h := sha256.Sum256([]byte(gid))
	return hex.EncodeToString(h[:16]) + stateSuffix
}

// sealState encrypts a state file with AES-256-GCM; the file name is the
// additional data, so files cannot be swapped.
func sealState(key []byte, name string, plain []byte) ([]byte, error) {
	a, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, a.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return a.Seal(nonce, nonce, plain, []byte(name)), nil
}

func openState(key []byte, name string, data []byte) ([]byte, error) {
	a, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(data) < a.NonceSize()+a.Overhead() {
		return nil, errors.New("state file too short")
	}
	return a.Open(nil, data[:a.NonceSize()], data[a.NonceSize():], []byte(name))
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// saveGroup writes gr's state; call with gr.mu held. Failures are logged:
// the sidecar then rejoins after a restart.
func (m *Manager) saveGroup(gr *group) {
	// Close waits for saves in progress (saveMu), so no file is written
	// into the state directory after Close returns.
	m.saveMu.RLock()
	defer m.saveMu.RUnlock()
	if m.stateKey == nil || m.isClosed.Load() {
		return
	}
	st, err := gr.g.MarshalState()
	if err != nil {
		m.log.Warn("mls state not saved", "group", gr.name, "err", err)
		return
	}
	plain, err := json.Marshal(persisted{Kind: gr.kind, Name: gr.name, State: st})
	clear(st)
	if err != nil {
		return
	}
	name := stateFile(gr.gid)
	data, err := sealState(m.stateKey, name, plain)
	clear(plain)
	if err == nil {
		err = identity.WriteFileAtomic(filepath.Join(m.cfg.StateDir, name), data, 0o600)
	}
	if err != nil {
		m.log.Warn("mls state not saved", "group", gr.name, "err", err)
	}
}

// removeState deletes a dropped group's state file.
func (m *Manager) removeState(gid string) {
	m.saveMu.RLock()
	defer m.saveMu.RUnlock()
	if m.stateKey == nil || m.isClosed.Load() {
		return
	}
	if err := os.Remove(filepath.Join(m.cfg.StateDir, stateFile(gid))); err != nil && !errors.Is(err, os.ErrNotExist) {
		m.log.Warn("mls state not removed", "err", err)
	}
}

// loadState restores the groups of the state directory (created if
// missing). A file that does not decrypt or restore is logged and
// removed: that group is rejoined.
func (m *Manager) loadState() error {
	if err := os.MkdirAll(m.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("AGW_MLS_STATE_DIR %q: %w", m.cfg.StateDir, err)
	}
	ents, err := os.ReadDir(m.cfg.StateDir)
	if err != nil {
		return fmt.Errorf("AGW_MLS_STATE_DIR %q: %w", m.cfg.StateDir, err)
	}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), stateSuffix) {
			continue
		}
		path := filepath.Join(m.cfg.StateDir, e.Name())
		gr, err := m.loadGroup(path, e.Name())
		if err != nil {
			m.log.Warn("mls state not restored; the group will be rejoined", "file", e.Name(), "err", err)
			_ = os.Remove(path)
			continue
		}
		m.groups[gr.gid] = gr
		switch gr.kind {
		case kindP2P:
			m.byPeer[gr.name] = gr
		case kindChannel:
			m.byTopic[gr.name] = gr
			m.want[gr.name] = true
		}
		m.log.Info("mls group restored", "group", gr.name, "epoch", gr.g.Epoch())
	}
	return nil
}

func (m *Manager) loadGroup(path, name string) (*group, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	plain, err := openState(m.stateKey, name, data)
	if err != nil {
		return nil, errors.New("does not decrypt with AGW_MLS_STATE_KEY")
	}
	defer clear(plain)
	var p persisted
	if err := json.Unmarshal(plain, &p); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if p.Kind != kindP2P && p.Kind != kindChannel || p.Name == "" {
		return nil, errors.New("unknown group kind")
	}
	g, err := mls.UnmarshalState(p.State, m.groupOptions()...)
	clear(p.State)
	if err != nil {
		return nil, err
	}
	gr, err := newGroup(p.Kind, p.Name, g)
	if err != nil {
		return nil, err
	}
	if stateFile(gr.gid) != name {
		return nil, errors.New("state file name does not match its group")
	}
	gr.restored, gr.minEpoch, gr.lastRotation = true, g.Epoch(), m.now()
	gr.publishReady()
	return gr, nil
}
