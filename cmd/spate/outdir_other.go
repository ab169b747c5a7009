//go:build !unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// lockFile is DIR/.spate.lock created exclusively: without flock a lock
// left by a crashed run must be removed by hand.
type lockFile struct{ path string }

func acquireLock(dir, what string) (*lockFile, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		holder, _ := os.ReadFile(path)
		return nil, fmt.Errorf("report directory %s is %w (%s; remove %s if that run is gone)", dir, errDirInUse, holder, path)
	}
	if err != nil {
		return nil, fmt.Errorf("report directory: %w", err)
	}
	_, _ = f.WriteString(holderText(what) + "\n")
	f.Close()
	return &lockFile{path: path}, nil
}

func (l *lockFile) release() { _ = os.Remove(l.path) }
