// Package handover passes a running wasmgate's listening sockets to the new
// process that replaces it, so that a restart or an upgrade refuses no
// connection: the kernel keeps one socket, with its accept queue, while
// both processes hold it, and only the old process stops accepting on it.
//
// The old process starts the new one (Start) with the listeners as extra
// files and two environment variables: EnvFDs names them ("ws:3,text:4")
// and EnvReady is the write end of a pipe. The new process takes them
// (FromEnv, Inherited.Listen), loads its modules, serves, and writes
// "ready" on the pipe (Inherited.Ready). Only then does the old process stop
// accepting and close its clients. If the new process fails or exits
// first, the pipe reads EOF and the old one keeps serving.
//
// Goroutines: Start runs one reader of the pipe while it waits, and once
// the child is ready one goroutine that reaps it when it exits.
package handover

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// The environment variables between the old process and the new one.
const (
	// EnvFDs lists the inherited listeners, "name:fd" separated by commas.
	EnvFDs = "WASMGATE_LISTEN_FDS"
	// EnvReady is the descriptor the new process writes "ready\n" to.
	EnvReady = "WASMGATE_READY_FD"
)

// Named is a listening socket to hand over and the name the new process
// knows it by ("ws", "text", "admin").
type Named struct {
	Name string
	File *os.File
}

// Inherited is what the new process got from the old one.
type Inherited struct {
	files map[string]*os.File
	ready *os.File
}

// FromEnv returns the listeners inherited through EnvFDs and the readiness
// pipe, or nil when the process was not started by a handover. It removes
// both variables from the environment, so that the process's own children
// do not see them.
func FromEnv() (*Inherited, error) {
	fds, readyFD := os.Getenv(EnvFDs), os.Getenv(EnvReady)
	if fds == "" && readyFD == "" {
		return nil, nil
	}
	_ = os.Unsetenv(EnvFDs)
	_ = os.Unsetenv(EnvReady)
	byName, err := parseFDs(fds)
	if err != nil {
		return nil, err
	}
	in := &Inherited{files: map[string]*os.File{}}
	for name, fd := range byName {
		in.files[name] = os.NewFile(uintptr(fd), "inherited "+name+" listener")
	}
	if readyFD != "" {
		fd, err := strconv.Atoi(readyFD)
		if err != nil || fd < 3 {
			return nil, fmt.Errorf("%s=%q: want a descriptor number, 3 or more", EnvReady, readyFD)
		}
		in.ready = os.NewFile(uintptr(fd), "handover ready pipe")
	}
	return in, nil
}

// parseFDs reads EnvFDs: "name:fd" pairs separated by commas, each name
// once, each fd 3 or more (0-2 are stdio) and used once.
func parseFDs(v string) (map[string]int, error) {
	out := map[string]int{}
	seen := map[int]bool{}
	for _, item := range strings.Split(v, ",") {
		if item == "" {
			continue
		}
		name, num, ok := strings.Cut(item, ":")
		fd, err := strconv.Atoi(num)
		if !ok || name == "" || err != nil || fd < 3 || fd > 1<<20 {
			return nil, fmt.Errorf("%s=%q: want name:fd pairs separated by commas, fd 3 or more", EnvFDs, v)
		}
		if _, dup := out[name]; dup || seen[fd] {
			return nil, fmt.Errorf("%s=%q: %q or fd %d given twice", EnvFDs, v, name, fd)
		}
		out[name], seen[fd] = fd, true
	}
	return out, nil
}

// Listen returns the inherited listener called name if it listens on addr
// (a configured port 0 matches any), and otherwise a new listener on addr:
// a new config may have moved a port. in may be nil.
func (in *Inherited) Listen(name, addr string) (net.Listener, error) {
	if in != nil {
		if f := in.files[name]; f != nil {
			delete(in.files, name)
			ln, err := net.FileListener(f)
			_ = f.Close() // FileListener made its own copy
			if err != nil {
				return nil, fmt.Errorf("inherited %s listener: %w", name, err)
			}
			if sameAddr(addr, ln.Addr()) {
				return ln, nil
			}
			_ = ln.Close()
		}
	}
	return net.Listen("tcp", addr)
}

// sameAddr reports whether the listener at got serves the configured addr.
func sameAddr(addr string, got net.Addr) bool {
	host, port, err := net.SplitHostPort(addr)
	tcp, ok := got.(*net.TCPAddr)
	if err != nil || !ok {
		return false
	}
	if port != "0" && port != strconv.Itoa(tcp.Port) {
		return false
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		return tcp.IP.IsUnspecified()
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.Equal(tcp.IP)
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return false
	}
	for _, ip := range ips {
		if ip.Equal(tcp.IP) {
			return true
		}
	}
	return false
}

// Ready tells the old process that this one serves, and closes the
// listeners the config no longer uses. in may be nil.
func (in *Inherited) Ready() error {
	if in == nil {
		return nil
	}
	in.closeUnused()
	if in.ready == nil {
		return nil
	}
	defer in.ready.Close()
	if _, err := in.ready.WriteString("ready\n"); err != nil {
		return fmt.Errorf("handover: telling the old process we are ready: %w", err)
	}
	return nil
}

// Close releases what was not used (a failed start). in may be nil.
func (in *Inherited) Close() {
	if in == nil {
		return
	}
	in.closeUnused()
	if in.ready != nil {
		_ = in.ready.Close()
	}
}

func (in *Inherited) closeUnused() {
	for name, f := range in.files {
		_ = f.Close()
		delete(in.files, name)
	}
}

// Child is a new process that has taken over.
type Child struct {
	Pid int
}

// Start starts path with args, hands it files, and waits until it says it
// is ready, it exits, or ctx ends (then it is killed). The child shares
// this process's standard output and error. files are not closed.
func Start(ctx context.Context, path string, args []string, files []Named) (*Child, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("handover: pipe: %w", err)
	}
	defer r.Close()
	cmd := exec.Command(path, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	var names []string
	for i, f := range files {
		cmd.ExtraFiles = append(cmd.ExtraFiles, f.File)
		names = append(names, f.Name+":"+strconv.Itoa(3+i))
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, w)
	cmd.Env = append(withoutHandoverEnv(os.Environ()),
		EnvFDs+"="+strings.Join(names, ","), EnvReady+"="+strconv.Itoa(3+len(files)))
	err = cmd.Start()
	_ = w.Close() // the child has its copy: EOF on r once it exits
	if err != nil {
		return nil, fmt.Errorf("handover: starting %s: %w", path, err)
	}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(io.LimitReader(r, 64)).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if s == "ready\n" {
			go func() { _ = cmd.Wait() }() // reaps it should it exit before us
			return &Child{Pid: cmd.Process.Pid}, nil
		}
		err := cmd.Wait()
		if err == nil {
			err = errors.New("exited")
		}
		return nil, fmt.Errorf("handover: the new process (pid %d) stopped before it was ready: %w (its log says why)", cmd.Process.Pid, err)
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		<-line
		return nil, fmt.Errorf("handover: the new process (pid %d) was not ready in time, killed: %w", cmd.Process.Pid, ctx.Err())
	}
}

func withoutHandoverEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, EnvFDs+"=") && !strings.HasPrefix(kv, EnvReady+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// File returns a copy of ln's descriptor to hand over.
func File(ln net.Listener) (*os.File, error) {
	f, ok := ln.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, fmt.Errorf("handover: a %T cannot be handed over", ln)
	}
	return f.File()
}
