package push

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/internal/wire"
)

// CommandError is a command's ok:false answer.
type CommandError struct {
	Code    string
	Message string
}

func (e *CommandError) Error() string { return e.Code + ": " + e.Message }

func badRequest(format string, args ...any) error {
	return &CommandError{Code: wire.CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}

// commandError maps any error a command returns to its wire form.
func commandError(err error) *CommandError {
	var ce *CommandError
	if errors.As(err, &ce) {
		return ce
	}
	code := wire.CodeInternal
	switch abi.ErrnoOf(err) {
	case abi.ErrnoNotFound:
		code = wire.CodeNotFound
	case abi.ErrnoInvalid:
		code = wire.CodeInvalid
	case abi.ErrnoTooLarge:
		code = wire.CodeTooLarge
	case abi.ErrnoQueueFull:
		code = wire.CodeQueueFull
	case abi.ErrnoLimit:
		code = wire.CodeLimit
	case abi.ErrnoUnavailable:
		code = wire.CodeUnavailable
	}
	return &CommandError{Code: code, Message: err.Error()}
}

// command runs one push command against the Gateway.
type command func(ctx context.Context, g Gateway, r *wire.Request) (any, error)

// execute runs the request's command with g. auth is handled by the port.
func (p *Ports) execute(ctx context.Context, g Gateway, r *wire.Request) (any, error) {
	if len(r.Cmd) >= 2 && r.Cmd[0] == '"' {
		// Look up the raw name first: no allocation on the hot path.
		if cmd, ok := p.commands[string(r.Cmd[1:len(r.Cmd)-1])]; ok {
			return cmd.call(ctx, g, r)
		}
	}
	name, ok := wire.String(r.Cmd)
	if !ok {
		return nil, badRequest("cmd must be a string")
	}
	cmd, ok := p.commands[name]
	if !ok {
		return nil, &CommandError{Code: wire.CodeUnknownCmd, Message: fmt.Sprintf("unknown cmd %q", name)}
	}
	return cmd.call(ctx, g, r)
}

// Argument decoders: a missing or mistyped argument is a bad_request that
// names the field.

func argString(name string, raw []byte) (string, error) {
	if raw == nil {
		return "", badRequest("missing %s", name)
	}
	s, ok := wire.String(raw)
	if !ok || s == "" {
		return "", badRequest("%s must be a non-empty string", name)
	}
	return s, nil
}

func argKey(name string, raw []byte) (string, error) {
	if raw == nil {
		return "", badRequest("missing %s", name)
	}
	s, ok := wire.Key(raw)
	if !ok || s == "" {
		return "", badRequest("%s must be a non-empty string or a number", name)
	}
	return s, nil
}

func argKeys(name string, raw []byte) ([]string, error) {
	if raw == nil {
		return nil, badRequest("missing %s", name)
	}
	ks, ok := wire.Keys(raw)
	if !ok {
		return nil, badRequest("%s must be an array of strings or numbers", name)
	}
	return ks, nil
}

func argOneOrMany(name string, raw []byte) ([]string, error) {
	if raw == nil {
		return nil, badRequest("missing %s", name)
	}
	ks, ok := wire.OneOrMany(raw)
	if !ok {
		return nil, badRequest("%s must be a string, a number or an array of them", name)
	}
	return ks, nil
}

// optKeys decodes an optional array; absent or null gives (nil, false).
func optKeys(name string, raw []byte) ([]string, bool, error) {
	if raw == nil || wire.IsNull(raw) {
		return nil, false, nil
	}
	ks, err := argKeys(name, raw)
	return ks, err == nil, err
}

func argObject(name string, raw []byte) ([]byte, error) {
	if raw == nil {
		return nil, badRequest("missing %s", name)
	}
	obj, ok := wire.Object(raw)
	if !ok {
		return nil, badRequest("%s must be a JSON object", name)
	}
	return obj, nil
}

// argMessage decodes data (and binary): a string sent as a text frame, or
// base64 sent as a binary frame. required false allows data to be absent
// (given reports whether it was there). With borrow, a text message's Data
// may alias the request (see Gateway.SendBorrowed).
func argMessage(r *wire.Request, required, borrow bool) (msg abi.Message, given bool, err error) {
	if r.Data == nil && !required {
		return msg, false, nil
	}
	binary := false
	if r.Binary != nil && !wire.IsNull(r.Binary) {
		b, ok := wire.Bool(r.Binary)
		if !ok {
			return msg, false, badRequest("binary must be true or false")
		}
		binary = b
	}
	if r.Data == nil {
		return msg, false, badRequest("missing data")
	}
	data, ok := wire.Plain(r.Data)
	if !ok || !borrow || binary {
		if data, ok = wire.Bytes(r.Data); !ok {
			return msg, false, badRequest("data must be a string")
		}
	}
	if binary {
		dec := make([]byte, base64.StdEncoding.DecodedLen(len(data)))
		n, err := base64.StdEncoding.Decode(dec, data)
		if err != nil {
			return msg, false, &CommandError{Code: wire.CodeInvalid, Message: "data is not valid base64: " + err.Error()}
		}
		data = dec[:n]
	}
	return abi.Message{Data: data, Binary: binary}, true, nil
}
