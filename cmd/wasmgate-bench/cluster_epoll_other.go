//go:build !linux

package main

import (
	"errors"

	"github.com/fasthttp/websocket"
)

// defaultClusterReader is -cluster-reader's default: the epoll reader is
// Linux only.
const defaultClusterReader = "goroutine"

// epollReaders is the epoll reader, which only Linux has
// (cluster_epoll_linux.go).
type epollReaders struct{}

func startEpollReaders([]*websocket.Conn, []memberLog, *memberCounters, int) (*epollReaders, error) {
	return nil, errors.New("-cluster-reader epoll: Linux only (use goroutine)")
}

func (*epollReaders) close() {}
