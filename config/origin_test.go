package config

import "testing"

func TestOriginAllowed(t *testing.T) {
	patterns := []string{"https://app.example.com", "example.net:8443", "*.example.org"}
	for origin, want := range map[string]bool{
		"":                          true, // not a browser
		"https://app.example.com":   true,
		"http://app.example.com":    false,
		"https://app.example.com:1": false,
		"https://example.net:8443":  true,
		"http://example.net:8443":   true,
		"https://example.net":       false,
		"https://x.example.org":     true,
		"https://example.org":       false,
		"https://xexample.org":      false,
		"https://x.example.org.com": false,
		"null":                      false, // a sandboxed iframe or a file: page
	} {
		if got := OriginAllowed(patterns, origin); got != want {
			t.Errorf("OriginAllowed(%q) = %v, want %v", origin, got, want)
		}
	}
	if !OriginAllowed(nil, "https://anything.example") {
		t.Error("an empty list must allow every origin")
	}
}
