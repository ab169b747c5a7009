//go:build unix && !linux

package chaos

import "syscall"

// setDeathSignal does nothing outside Linux, which alone can tie a child's
// life to its parent's.
func setDeathSignal(*syscall.SysProcAttr) {}
