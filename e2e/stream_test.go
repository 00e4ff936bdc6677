//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// stamped is an item with the host time it arrived.
type stamped[T any] struct {
	At  time.Time
	Val T
}

// stream is an append-only log that waiters can scan from a mark; it is
// how console lines, agent lines and QMP events reach the tests.
type stream[T any] struct {
	mu      sync.Mutex
	items   []stamped[T]
	changed chan struct{}
	err     error // set once the source is gone
}

func newStream[T any]() *stream[T] { return &stream[T]{changed: make(chan struct{})} }

func (s *stream[T]) add(v T) {
	s.mu.Lock()
	s.items = append(s.items, stamped[T]{At: time.Now(), Val: v})
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func (s *stream[T]) close(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
		close(s.changed)
		s.changed = make(chan struct{})
	}
	s.mu.Unlock()
}

// mark returns the index the next item will have.
func (s *stream[T]) mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}

// since returns a copy of the items from index from on.
func (s *stream[T]) since(from int) []stamped[T] {
	s.mu.Lock()
	defer s.mu.Unlock()
	if from > len(s.items) {
		return nil
	}
	return append([]stamped[T](nil), s.items[from:]...)
}

// wait returns the first item at or after from that satisfies match, and
// the index after it. It fails when ctx ends or the source is gone.
func (s *stream[T]) wait(ctx context.Context, from int, match func(T) bool) (stamped[T], int, error) {
	for {
		s.mu.Lock()
		for i := from; i < len(s.items); i++ {
			if match(s.items[i].Val) {
				it := s.items[i]
				s.mu.Unlock()
				return it, i + 1, nil
			}
		}
		from = len(s.items)
		ch, err := s.changed, s.err
		s.mu.Unlock()
		if err != nil {
			return stamped[T]{}, from, fmt.Errorf("source closed: %w", err)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return stamped[T]{}, from, ctx.Err()
		}
	}
}

// tailLines returns the last n string items joined by newlines.
func tailLines(s *stream[string], n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	from := max(0, len(s.items)-n)
	var b strings.Builder
	for _, it := range s.items[from:] {
		b.WriteString(it.Val)
		b.WriteByte('\n')
	}
	return b.String()
}
