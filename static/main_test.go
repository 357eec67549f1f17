package static

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind (a server or a body writer
// that was not stopped).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
