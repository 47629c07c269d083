package lease

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"time"
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

// AcquireOrBreakDead is s.Acquire, except that a lease held by a process of
// this host that no longer exists (LocalHolderDead) is broken and taken at
// once instead of waited out: a sluice killed and restarted here need not
// wait for its predecessor's leases to expire. It reports whether it broke
// one.
func AcquireOrBreakDead(ctx context.Context, s Store, name, holder string, ttl time.Duration) (l Lease, broke bool, err error) {
	l, err = s.Acquire(ctx, name, holder, ttl)
	if !errors.Is(err, ErrHeld) {
		return l, false, err
	}
	cur, ok, gerr := s.Get(ctx, name)
	if gerr != nil || !ok || cur.Holder == holder || !LocalHolderDead(cur.Holder) {
		return l, false, err
	}
	if broke, berr := s.Break(ctx, cur); berr != nil || !broke {
		return l, false, err
	}
	l, err = s.Acquire(ctx, name, holder, ttl)
	return l, err == nil, err
}
