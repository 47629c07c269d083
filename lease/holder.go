package lease

import (
	"os"
	"strconv"
	"strings"
)

// LocalHolderDead reports whether holder (from NewHolder) names a process
// on this host that no longer exists. It is false when that cannot be
// told: another host, an unparsable holder, or a system without /proc.
func LocalHolderDead(holder string) bool {
	parts := strings.Split(holder, "/")
	if len(parts) != 3 {
		return false
	}
	host, err := os.Hostname()
	if err != nil || host != parts[0] {
		return false
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return false
	}
	if _, err := os.Stat("/proc/self"); err != nil {
		return false // no /proc: cannot tell
	}
	_, err = os.Stat("/proc/" + strconv.Itoa(pid))
	return os.IsNotExist(err)
}
