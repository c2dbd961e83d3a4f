//go:build unix

package main

import "testing"

func TestCompareCatchesReorderAndLoss(t *testing.T) {
	sent := []message{{"a", []byte("1")}, {"a", []byte("2")}, {"b", []byte("3")}}
	for _, tc := range []struct {
		name string
		got  []message
		ok   bool
	}{
		{"same", sent, true},
		{"duplicate after", append(append([]message{}, sent...), message{"a", []byte("1")}), true},
		{"reordered key", []message{{"a", []byte("2")}, {"a", []byte("1")}, {"b", []byte("3")}}, false},
		{"lost", sent[:2], false},
		{"key changed", []message{{"a", []byte("1")}, {"b", []byte("2")}, {"b", []byte("3")}}, false},
	} {
		if err := compare(sent, tc.got); (err == nil) != tc.ok {
			t.Errorf("%s: compare = %v", tc.name, err)
		}
	}
}
