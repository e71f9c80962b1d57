package server

import "testing"

func TestConnectionLimit(t *testing.T) {
	tests := []struct {
		name          string
		max           int
		nofile        uint64
		headroom      int
		want          int
		clamped, fail bool
	}{
		// The adversarial run's box: 19,000 idle clients must fit.
		{"default under 20000", 100_000, 20_000, 512, 19_488, true, false},
		{"limit unknown", 100_000, 0, 512, 100_000, false, false},
		{"limit large enough", 100_000, 1 << 20, 512, 100_000, false, false},
		{"exactly enough", 1000, 1512, 512, 1000, false, false},
		{"one short", 1000, 1511, 512, 999, true, false},
		{"no room", 100_000, 256, 512, 0, false, true},
	}
	for _, tc := range tests {
		got, clamped, err := connectionLimit(tc.max, tc.nofile, tc.headroom)
		if (err != nil) != tc.fail || got != tc.want || clamped != tc.clamped {
			t.Errorf("%s: connectionLimit(%d, %d, %d) = %d, %v, %v; want %d, %v, fail %v",
				tc.name, tc.max, tc.nofile, tc.headroom, got, clamped, err, tc.want, tc.clamped, tc.fail)
		}
	}
}
