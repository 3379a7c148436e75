package guest

import "testing"

func TestRenameKey(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		from, to string
		want     string
		wantOK   bool
	}{
		{"keeps position", `{"a":1,"b@x.io":2,"c":3}`, "b@x.io", "[email]", `{"a":1,"[email]":2,"c":3}`, true},
		{"missing key", `{"a":1}`, "b", "c", `{"a":1}`, false},
		{"same name", `{"a":1,"b":2}`, "a", "a", `{"a":1,"b":2}`, true},
		{"removes an earlier member named to", `{"x":1,"a":2,"b":3}`, "b", "x", `{"a":2,"x":3}`, true},
		{"removes a later member named to", `{"a":1,"b":2,"x":3}`, "a", "x", `{"x":1,"b":2}`, true},
		{"not an object", `[1,2]`, "0", "1", `[1,2]`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if ok := v.RenameKey(tt.from, tt.to); ok != tt.wantOK {
				t.Errorf("RenameKey(%q, %q) = %v, want %v", tt.from, tt.to, ok, tt.wantOK)
			}
			if got := string(v.JSON()); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
	var null *Value
	if null.RenameKey("a", "b") {
		t.Error("RenameKey on a nil Value = true, want false")
	}
}
