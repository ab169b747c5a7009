package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"
)

// maxOutput bounds the command output kept in results.
const maxOutput = 4 << 10

// CommandGrace is how long a command that is being stopped (its timeout
// passed, or the run was interrupted) has to exit after SIGTERM before it
// and everything it started are killed.
const CommandGrace = 2 * time.Second

// runCommand runs command with sh -c in a process group of its own,
// bounded by timeout and by ctx, and records its exit code and output in
// details under prefix. When either ends first, the whole group (the shell
// and what it started) is sent SIGTERM, then SIGKILL after CommandGrace, so
// an interrupted run leaves no command behind and ends within the grace.
func runCommand(ctx context.Context, command string, timeout time.Duration, details map[string]any, prefix string) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, "sh", "-c", command)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	ownGroup(cmd)
	cmd.WaitDelay = CommandGrace
	err := cmd.Run()
	if cctx.Err() != nil && cmd.Process != nil {
		killGroup(cmd) // whatever ignored SIGTERM, or outlived the shell
	}
	o := out.String()
	if len(o) > maxOutput {
		o = o[:maxOutput] + "…"
	}
	details[prefix+"command"] = command
	details[prefix+"output"] = o
	exit := -1
	if cmd.ProcessState != nil {
		exit = cmd.ProcessState.ExitCode()
	}
	details[prefix+"exit_code"] = exit
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%q was stopped: the run ended first", command)
	case errors.Is(cctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%q timed out after %s", command, timeout)
	case err != nil && exit > 0:
		return fmt.Errorf("%q exited with status %d%s", command, exit, lastLine(o))
	case err != nil:
		return fmt.Errorf("%q: %v", command, err)
	}
	return nil
}

// lastLine returns ": " and the last non-empty line of out (cut short), to
// say why a command failed in one line; "" when out is empty.
func lastLine(out string) string {
	lines := bytes.Split(bytes.TrimSpace([]byte(out)), []byte("\n"))
	last := string(bytes.TrimSpace(lines[len(lines)-1]))
	if last == "" {
		return ""
	}
	if len(last) > 200 {
		last = last[:200] + "…"
	}
	return ": " + last
}
