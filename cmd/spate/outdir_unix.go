//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// lockFile is an exclusive flock on DIR/.spate.lock, which names its
// holder. The kernel drops the lock when the process dies, however it
// dies, so a crashed run never leaves a directory locked.
type lockFile struct {
	f    *os.File
	path string
}

// acquireLock locks dir for this process, or fails at once with
// errDirInUse naming the holder. what describes this run for others.
func acquireLock(dir, what string) (*lockFile, error) {
	path := filepath.Join(dir, lockName)
	for attempt := 0; attempt < 10; attempt++ {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("report directory: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			holder, _ := os.ReadFile(path)
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				h := strings.TrimSpace(string(holder))
				if h == "" {
					h = "a run just starting"
				}
				return nil, fmt.Errorf("report directory %s is %w (%s); wait for it to end, or give another --out", dir, errDirInUse, h)
			}
			return nil, fmt.Errorf("report directory: locking %s: %w", path, err)
		}
		// The holder before us may have removed the file between our open
		// and our lock: then we hold a lock on a file nobody else sees.
		held, herr := f.Stat()
		now, nerr := os.Stat(path)
		if herr != nil || nerr != nil || !os.SameFile(held, now) {
			f.Close()
			continue
		}
		if err := f.Truncate(0); err == nil {
			_, _ = f.WriteAt([]byte(holderText(what)+"\n"), 0)
		}
		return &lockFile{f: f, path: path}, nil
	}
	return nil, fmt.Errorf("report directory %s: its lock file keeps changing; is another run starting there?", dir)
}

// release removes the lock file and then unlocks it (removal first, so a
// run waiting to lock the old file finds it gone and tries afresh).
func (l *lockFile) release() {
	_ = os.Remove(l.path)
	_ = l.f.Close()
}
