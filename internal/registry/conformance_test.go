package registry_test

import (
	"testing"

	"github.com/wasmgate/wasmgate/internal/registry"
	"github.com/wasmgate/wasmgate/internal/registry/registrytest"
)

// TestLocal_Conformance runs the suite every Registry passes (the Redis one
// runs it too, in redisreg).
func TestLocal_Conformance(t *testing.T) {
	registrytest.Run(t, func(_ *testing.T, l registry.Limits) registry.Registry {
		return registry.NewLocalWithLimits(l)
	})
}
