package identity

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"time"
)

// maxIdentityFileSize bounds every file the Source reads.
const maxIdentityFileSize = 1 << 20

// fullReadEvery forces a read of unchanged-looking files every so many
// polls, in case a change kept size and modification time.
const fullReadEvery = 12

// watchedFile remembers what a file looked like when last read.
type watchedFile struct {
	path  string
	size  int64
	mtime time.Time
	info  os.FileInfo
}

// changed reports whether the file looks different from the last read (or
// cannot be stat'ed, which the read then reports).
func (w *watchedFile) changed() bool {
	fi, err := os.Stat(w.path)
	if err != nil || w.info == nil {
		return true
	}
	return fi.Size() != w.size || !fi.ModTime().Equal(w.mtime) || !os.SameFile(fi, w.info)
}

// read reads the file (following symlinks, as a Kubernetes secret mount's
// ..data swap needs) and records its stat.
func (w *watchedFile) read() ([]byte, error) {
	f, err := os.Open(w.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", w.path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxIdentityFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxIdentityFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", w.path, maxIdentityFileSize)
	}
	w.size, w.mtime, w.info = fi.Size(), fi.ModTime(), fi
	return data, nil
}

// contentSum hashes file contents (or read errors) into one signature of
// a group of files, to tell new content from content already tried.
func contentSum(parts [][]byte, errs []error) [32]byte {
	h := sha256.New()
	for i := range parts {
		if errs[i] != nil {
			fmt.Fprintf(h, "err:%d:%s\x00", i, errs[i])
			continue
		}
		fmt.Fprintf(h, "ok:%d:%d\x00", i, len(parts[i]))
		h.Write(parts[i])
	}
	var s [32]byte
	h.Sum(s[:0])
	return s
}
