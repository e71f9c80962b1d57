package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// child is a subcommand of this binary running as a child process. Its
// stdout lines arrive on lines; its stderr goes to ours. Closing its stdin
// asks it to end.
type child struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

// startChild re-executes this binary with args. The child is killed when
// ctx ends or this process dies.
func startChild(ctx context.Context, args ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	return startChildExe(ctx, exe, args...)
}

// startChildExe is startChild running exe, another wasmgate-bench binary
// (the hold phase's -serve-bin), instead of this one.
func startChildExe(ctx context.Context, exe string, args ...string) (*child, error) {
	var err error
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	c := &child{name: args[0], cmd: cmd, lines: make(chan string, 64)}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("%s stdin: %w", c.name, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%s stdout: %w", c.name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", c.name, err)
	}
	go c.readLines(stdout)
	return c, nil
}

func (c *child) readLines(r io.Reader) {
	defer close(c.lines)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		c.lines <- sc.Text()
	}
}

// expect waits up to timeout for a stdout line starting with prefix and
// returns it; other lines are skipped.
func (c *child) expect(prefix string, timeout time.Duration) (string, error) {
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				return "", fmt.Errorf("%s exited before printing %q", c.name, prefix)
			}
			if strings.HasPrefix(line, prefix) {
				return line, nil
			}
		case <-deadline:
			return "", fmt.Errorf("%s printed no %q within %s", c.name, prefix, timeout)
		}
	}
}

// ask writes one command line and waits for the answer starting with
// prefix (serve's stdin protocol).
func (c *child) ask(cmd, prefix string) (string, error) {
	if _, err := io.WriteString(c.stdin, cmd+"\n"); err != nil {
		return "", fmt.Errorf("%s: send %q: %w", c.name, cmd, err)
	}
	return c.expect(prefix, 30*time.Second)
}

// stop closes stdin and waits for the child to exit, killing it if it
// takes longer than grace.
func (c *child) stop(grace time.Duration) error {
	_ = c.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		return nil
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not exit within %s; killed", c.name, grace)
	}
}

// runChild runs a child to completion within timeout and returns its last
// stdout line.
func runChild(ctx context.Context, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := startChild(ctx, args...)
	if err != nil {
		return "", err
	}
	_ = c.stdin.Close()
	last := ""
	for line := range c.lines {
		last = line
	}
	if err := c.cmd.Wait(); err != nil {
		return "", fmt.Errorf("%s: %w", c.name, errors.Join(err, ctx.Err()))
	}
	return last, nil
}
