package config

import (
	"errors"
	"strings"
)

// OriginAllowed reports whether a WebSocket handshake with the given Origin
// header passes server.allowed_origins. An empty list allows every origin,
// and so does a request without an Origin header: browsers always send one
// on a WebSocket handshake, so its absence means a non-browser client
// (a device, a backend), which an origin policy does not protect anyway.
//
// A pattern with a scheme ("https://app.example.com") must equal the whole
// origin; one without ("app.example.com", "example.com:8443") must equal its
// host[:port], whatever the scheme; "*.example.com" matches any subdomain
// of example.com, not example.com itself. Matching ignores case.
func OriginAllowed(patterns []string, origin string) bool {
	if len(patterns) == 0 || origin == "" {
		return true
	}
	origin = strings.ToLower(origin)
	host := origin
	if _, rest, ok := strings.Cut(origin, "://"); ok {
		host = rest
	}
	for _, p := range patterns {
		p = strings.ToLower(p)
		switch {
		case strings.Contains(p, "://"):
			if p == origin {
				return true
			}
		case strings.HasPrefix(p, "*."):
			if strings.HasSuffix(host, p[1:]) && len(host) > len(p)-1 {
				return true
			}
		case p == host:
			return true
		}
	}
	return false
}

// checkOriginPattern refuses a pattern OriginAllowed could never match as
// its author meant.
func checkOriginPattern(p string) error {
	host := p
	if _, rest, ok := strings.Cut(p, "://"); ok {
		host = rest
	}
	switch {
	case host == "":
		return errors.New("empty origin")
	case strings.ContainsAny(host, "/?#"):
		return errors.New("an origin has no path: scheme://host[:port]")
	case strings.Contains(host[min(2, len(host)):], "*") || strings.HasPrefix(host, "*") && !strings.HasPrefix(host, "*."):
		return errors.New("a wildcard may only start the host, as in *.example.com")
	}
	return nil
}
