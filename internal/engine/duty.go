package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/lease"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/source/httpsource"
)

// DefaultLeaseTTL is how long a lease (a single-instance duty, a job run's
// claim) outlives its holder's last heartbeat: the time a crashed or
// paused process's duties and runs wait before another process takes them.
const DefaultLeaseTTL = job.DefaultLeaseTTL

// Single-instance duties — each source, the local store watcher, reconcile
// — run under a lease in the shared state: the process holding lease
// "source/NAME", "watch" or "reconcile" does the work, renewing the lease
// every third of its TTL; every other process waits to take it over. A
// holder that stops renewing (killed, paused, cut off from the state) loses
// its duty once the lease expires, and stops acting on it as soon as it
// notices: when a renewal is refused, or when five sixths of the TTL have
// passed since it sent its last successful renewal (so a holder cut off
// from the state stops before anyone else can take over, give or take
// clock drift).

// duty runs fn whenever this process holds lease name, until ctx ends: fn's
// ctx is cancelled when the lease is lost, and the duty then waits to take
// the lease again. When fn returns nil and keep is set (a source without a
// schedule, done once), the lease is kept until ctx ends so that no other
// process repeats the work; otherwise it is released.
func (e *Engine) duty(ctx context.Context, name string, keep bool, fn func(ctx context.Context, held func() lease.Lease) error) {
	ttl := e.leaseTTL
	log := e.log.With("duty", name)
	waiting := false
	for ctx.Err() == nil {
		l, broke, err := lease.AcquireOrBreakDead(ctx, e.State, name, e.holder, ttl)
		if broke {
			log.Info("took over the duty of a process of this host that died")
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, lease.ErrHeld) {
				if !waiting {
					log.Info("duty held by another process; standing by", "holder", heldBy(ctx, e.State, name))
					waiting = true
				}
			} else {
				log.Warn("cannot take the duty's lease; retrying", "err", err)
			}
			if fault.Sleep(ctx, ttl/3) != nil {
				return
			}
			continue
		}
		waiting = false
		log.Info("duty taken", "epoch", l.Epoch)
		e.holdDuty(ctx, log, l, keep, fn)
	}
}

// holdDuty runs fn under l, renewing it, until fn returns (and keep is
// false) or the lease is lost or ctx ends; then it releases l.
func (e *Engine) holdDuty(ctx context.Context, log *slog.Logger, l lease.Lease, keep bool, fn func(ctx context.Context, held func() lease.Lease) error) {
	ttl := e.leaseTTL
	dctx, lost := context.WithCancelCause(ctx)
	defer lost(nil)
	var mu sync.Mutex
	held := func() lease.Lease { mu.Lock(); defer mu.Unlock(); return l }
	var wg sync.WaitGroup
	wg.Add(1)
	// The holder stops acting a sixth of the TTL before its lease can have
	// expired, counted from when the last successful renewal was sent
	// (the state stamped the expiry after that), whether or not a renewal
	// is still hanging.
	guard := ttl - ttl/6
	giveUp := time.AfterFunc(guard, func() {
		log.Warn("duty given up: its lease could not be renewed in time", "ttl", ttl)
		lost(fmt.Errorf("%w: not renewed within %s", lease.ErrLost, guard))
	})
	defer giveUp.Stop()
	go func() {
		defer wg.Done()
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-dctx.Done():
				return
			case <-t.C:
			}
			sent := e.now()
			rctx, cancel := context.WithTimeout(dctx, ttl/3)
			nl, err := e.State.Renew(rctx, held(), ttl)
			cancel()
			switch {
			case err == nil:
				mu.Lock()
				l = nl
				mu.Unlock()
				giveUp.Reset(guard - e.now().Sub(sent))
			case dctx.Err() != nil:
				return
			case lease.Lost(err):
				log.Warn("duty lost: another process took its lease; stopping", "epoch", held().Epoch)
				lost(err)
				return
			default:
				log.Warn("cannot renew the duty's lease; retrying", "err", err)
			}
		}
	}()
	err := fn(dctx, held)
	if err != nil && dctx.Err() == nil {
		log.Error("duty failed", "err", err)
	}
	if err == nil && keep && dctx.Err() == nil {
		<-dctx.Done() // hold the lease so that no other process repeats the duty
	}
	lost(nil)
	wg.Wait()
	if context.Cause(dctx) == nil || errors.Is(context.Cause(dctx), context.Canceled) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := e.State.Release(rctx, held()); err != nil {
			log.Warn("could not release the duty's lease; it expires by itself", "err", err)
		}
	}
	if err != nil && dctx.Err() == nil && ctx.Err() == nil {
		_ = fault.Sleep(ctx, ttl/3) // a failing duty does not spin
	}
}

func heldBy(ctx context.Context, s lease.Store, name string) string {
	l, ok, err := s.Get(ctx, name)
	if err != nil || !ok {
		return "?"
	}
	return l.Holder
}

// tick returns the latest schedule tick of period every at or before now:
// ticks are the multiples of every since the Unix epoch, UTC, so every
// process computes the same ticks whenever it started.
func tick(now time.Time, every time.Duration) time.Time {
	n := now.UnixNano()
	return time.Unix(0, n-n%int64(every)).UTC()
}

// sourceDuty runs a source while this process holds its lease. A scheduled
// source fetches each tick once: before fetching tick T it moves the
// source's recorded tick from the previous one to T (a compare-and-swap
// fenced by the lease), so a process that lost the lease fetches nothing,
// and two processes can never both fetch T. Ticks missed while no process
// held the lease (or while a fetch ran long) collapse into one fetch of the
// latest due tick. A source without a schedule is fetched once per holding
// of its lease.
func (e *Engine) sourceDuty(ctx context.Context, s pipeline.Source, im *httpsource.Importer, held func() lease.Lease) error {
	if s.Every <= 0 {
		return e.runSourceAt(ctx, s.Name, im, e.now())
	}
	key := "source-tick/" + s.Name
	for {
		last, _, err := e.State.Value(ctx, key)
		if err != nil {
			return err
		}
		due := tick(e.now(), s.Every)
		// Only forward: a tick recorded by a holder whose clock ran ahead
		// (or before this clock stepped back) was fetched already.
		if prev, perr := strconv.ParseInt(last, 10, 64); perr != nil || due.UnixNano() > prev {
			ok, err := e.State.CompareAndSwap(ctx, held(), key, last, strconv.FormatInt(due.UnixNano(), 10))
			if err != nil {
				return err
			}
			if ok {
				if prev, perr := strconv.ParseInt(last, 10, 64); perr == nil && due.Sub(time.Unix(0, prev)) > s.Every {
					e.log.Info("source ticks missed while no process ran it collapse into one fetch", "source", s.Name,
						"missed", int(due.Sub(time.Unix(0, prev))/s.Every)-1, "tick", due.Format(time.RFC3339))
				}
				if err := e.runSourceAt(ctx, s.Name, im, due); err != nil && ctx.Err() == nil {
					e.log.Error("source run failed", "source", s.Name, "tick", due.Format(time.RFC3339), "err", err)
				}
			}
		}
		next := tick(e.now(), s.Every).Add(s.Every)
		if fault.Sleep(ctx, next.Sub(e.now())) != nil {
			return nil
		}
	}
}
