package server

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/internal/push"
	"github.com/wasmgate/wasmgate/internal/recording"
)

// Recording one route (server.record_route) for `wasmgate replay`: its
// clients' connects, messages and closes, written by their reader
// goroutines, and the pushes that change those clients' state, written by
// the push connections (recordingPush). The Writer bounds the file
// (server.record_max_mb) and orders the lines.

// openRecording starts the recording when server.record_route is set.
func (s *Server) openRecording() error {
	if s.cfg.Server.RecordRoute == "" {
		return nil
	}
	w, err := recording.Create(s.cfg.Server.RecordFile, int64(s.cfg.Server.RecordMaxMB)<<20, s.log)
	if err != nil {
		return fmt.Errorf("server.record_file: %w", err)
	}
	s.rec = w
	s.log.Warn("recording a route: message contents and request headers are written to a file",
		"route", s.cfg.Server.RecordRoute, "file", s.cfg.Server.RecordFile, "max_mb", s.cfg.Server.RecordMaxMB)
	return nil
}

// records reports whether rt's events are recorded.
func (s *Server) records(rt *route) bool {
	return s.rec != nil && rt.path == s.cfg.Server.RecordRoute
}

func recordedMessage(id string, msg abi.Message) *recording.Event {
	if msg.Binary {
		return &recording.Event{Ev: recording.Message, Client: id, Binary: true, Base64: base64.StdEncoding.EncodeToString(msg.Data)}
	}
	return &recording.Event{Ev: recording.Message, Client: id, Text: string(msg.Data)}
}

// pushGateway is gw, recording state changes to recorded clients when a
// route is recorded.
func (s *Server) pushGateway(gw *Gateway) push.Gateway {
	if s.rec == nil {
		return gw
	}
	return recordingPush{Gateway: gw, rec: s.rec}
}

// recordingPush records the pushes that change a recorded client's state,
// once they succeeded; every other call goes to the Gateway unchanged.
type recordingPush struct {
	push.Gateway
	rec *recording.Writer
}

func (p recordingPush) note(err error, cmd, id string, args ...string) error {
	if err == nil && (id == "" || p.rec.Recorded(id)) {
		p.rec.Write(&recording.Event{Ev: recording.Push, Cmd: cmd, Client: id, Args: args})
	}
	return err
}

func (p recordingPush) BindUid(ctx context.Context, id, uid string) error {
	return p.note(p.Gateway.BindUid(ctx, id, uid), "bindUid", id, uid)
}

func (p recordingPush) UnbindUid(ctx context.Context, id, uid string) error {
	return p.note(p.Gateway.UnbindUid(ctx, id, uid), "unbindUid", id, uid)
}

func (p recordingPush) JoinGroup(ctx context.Context, id, group string) error {
	return p.note(p.Gateway.JoinGroup(ctx, id, group), "joinGroup", id, group)
}

func (p recordingPush) LeaveGroup(ctx context.Context, id, group string) error {
	return p.note(p.Gateway.LeaveGroup(ctx, id, group), "leaveGroup", id, group)
}

func (p recordingPush) Ungroup(ctx context.Context, group string) error {
	return p.note(p.Gateway.Ungroup(ctx, group), "ungroup", "", group)
}

func (p recordingPush) SetSession(ctx context.Context, id string, session []byte) error {
	return p.note(p.Gateway.SetSession(ctx, id, session), "setSession", id, string(session))
}

func (p recordingPush) UpdateSession(ctx context.Context, id string, patch []byte) error {
	return p.note(p.Gateway.UpdateSession(ctx, id, patch), "updateSession", id, string(patch))
}

func (p recordingPush) CloseClient(ctx context.Context, id string, final *abi.Message, code int) error {
	return p.note(p.Gateway.CloseClient(ctx, id, final, code), "closeClient", id)
}

func (p recordingPush) DestroyClient(ctx context.Context, id string) error {
	return p.note(p.Gateway.DestroyClient(ctx, id), "destroyClient", id)
}
