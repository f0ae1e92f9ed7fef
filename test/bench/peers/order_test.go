package main

import (
	"fmt"
	"slices"
	"testing"
)

// TestTurnOrder: every run's order holds each tool once; over 2n runs each tool takes every place, and runs right
// after each of the others within some run (a rotation alone kept three tools' cycle: tool 0 always after 2,
// and rotating forward then reversed left four or more tools never next to those two places away).
func TestTurnOrder(t *testing.T) {
	for n := 1; n <= 8; n++ { // the bench has up to seven tools
		place := map[[2]int]bool{} // tool, place
		after := map[[2]int]bool{} // tool, the tool right before it in a run
		for i := range 2 * n {
			o := turnOrder(n, i)
			if s := slices.Sorted(slices.Values(o)); !slices.Equal(s, seq(n)) {
				t.Fatalf("n=%d run %d: order %v is not each tool once", n, i, o)
			}
			for k, ti := range o {
				place[[2]int{ti, k}] = true
				if k > 0 {
					after[[2]int{ti, o[k-1]}] = true
				}
			}
		}
		for a := range n {
			for k := range n {
				if !place[[2]int{a, k}] {
					t.Errorf("n=%d: tool %d never in place %d", n, a, k)
				}
			}
			for b := range n {
				if a != b && !after[[2]int{a, b}] {
					t.Errorf("n=%d: tool %d never right after tool %d", n, a, b)
				}
			}
		}
	}
	if got := fmt.Sprint(turnOrder(2, 0), turnOrder(2, 1)); got != "[0 1] [1 0]" {
		t.Fatalf("two tools, runs 1 and 2: %s", got)
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
