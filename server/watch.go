package server

import (
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// reloadDebounce lets a file being copied into the handlers folder finish
// before it is loaded; a half-written module that slips through fails to
// compile, keeps the old version serving, and the write's next event
// triggers another reload.
const reloadDebounce = 250 * time.Millisecond

// startWatcher reloads when a .wasm file in the handlers folder is added,
// replaced or removed.
func (s *Server) startWatcher() error {
	if !s.cfg.Server.WatchHandlers {
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	if err := w.Add(s.cfg.Server.HandlersDir); err != nil {
		_ = w.Close()
		return err
	}
	s.watcher = w
	go s.watchLoop(w)
	return nil
}

func (s *Server) watchLoop(w *fsnotify.Watcher) {
	var timer *time.Timer
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				if timer != nil {
					timer.Stop()
				}
				return
			}
			if filepath.Ext(ev.Name) != ".wasm" {
				continue
			}
			if timer == nil {
				timer = time.AfterFunc(reloadDebounce, s.reloadFromWatcher)
			} else {
				timer.Reset(reloadDebounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			s.log.Error("watching handlers folder", "err", err)
		}
	}
}

func (s *Server) reloadFromWatcher() {
	if s.closing.Load() {
		return
	}
	if _, err := s.Reload(s.ctx); err != nil {
		s.log.Error("reload after a handlers folder change", "err", err)
	}
}
