package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCorePackagesStayFreeOfBackendSDKs keeps the portable packages portable:
// backend SDKs belong in their drivers only.
func TestCorePackagesStayFreeOfBackendSDKs(t *testing.T) {
	core := []string{"event", "queue", "queue/driver", "schema", "warehouse", "warehouse/driver", "format", "trigger", "pipeline", "source/httpsource"}
	banned := []string{"github.com/aws/", "github.com/nats-io/", "github.com/jackc/", "modernc.org/sqlite", "gocloud.dev"}
	for _, pkg := range core {
		out, err := exec.Command("go", "list", "-deps", "github.com/sluicehq/sluice/"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range banned {
				if strings.HasPrefix(dep, b) {
					t.Errorf("core package %s depends on %s", pkg, dep)
				}
			}
		}
	}
}
