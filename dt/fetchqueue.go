package dt

import (
	"context"
	"sync"
)

// maxFetchQueue bounds the body fetches one link queues; a verifier that would queue more waits.
const maxFetchQueue = 1 << 14

// fetchQueue is a link's queue of body fetches: FIFO, bounded by maxFetchQueue, and holding
// memory only for the jobs in it. A channel of that capacity would take about 900 KB on every
// link, idle or not, which is most of what a link costs.
type fetchQueue struct {
	mu    sync.Mutex
	jobs  []fetchJob    // guarded by mu
	ready chan struct{} // signalled when jobs may be waiting
	space chan struct{} // signalled when room may be free
}

func newFetchQueue() *fetchQueue {
	return &fetchQueue{ready: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

// put queues job, waiting while the queue is full. It reports false if ctx ended first.
func (q *fetchQueue) put(ctx context.Context, job fetchJob) bool {
	for {
		q.mu.Lock()
		if len(q.jobs) < maxFetchQueue {
			q.jobs = append(q.jobs, job)
			q.mu.Unlock()
			signal(q.ready)
			return true
		}
		q.mu.Unlock()
		select {
		case <-q.space:
		case <-ctx.Done():
			return false
		}
	}
}

// take returns the oldest job, waiting while there is none. It reports false if ctx ended first.
func (q *fetchQueue) take(ctx context.Context) (fetchJob, bool) {
	for {
		q.mu.Lock()
		if len(q.jobs) > 0 {
			job := q.jobs[0]
			q.jobs[0] = fetchJob{}
			q.jobs = q.jobs[1:]
			more := len(q.jobs) > 0
			if !more {
				q.jobs = nil // let the drained array go
			}
			q.mu.Unlock()
			signal(q.space)
			if more {
				signal(q.ready) // another taker may start on the next job
			}
			return job, true
		}
		q.mu.Unlock()
		select {
		case <-q.ready:
		case <-ctx.Done():
			return fetchJob{}, false
		}
	}
}

// signal wakes one waiter on c, if any; a signal already pending is enough.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
