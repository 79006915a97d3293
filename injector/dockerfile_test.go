package injector

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction with its continuation lines
// joined.
type instruction struct {
	cmd  string // upper case
	args string
	line int
}

func parseDockerfile(src string) []instruction {
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, raw := range strings.Split(src, "\n") {
		line := strings.TrimSpace(raw)
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(line, "#") {
			continue // a comment inside a continued instruction
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\"))
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start})
		cur.Reset()
	}
	return out
}

// checkDockerfile lists what the image build gets wrong: it must be
// multi-stage, build a static trimmed binary with the local toolchain,
// download nothing but modules, and run agw as a non-root user.
func checkDockerfile(src string) []string {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	if regexp.MustCompile(`(?mi)^#\s*syntax\s*=`).MatchString(src) {
		bad("a # syntax= directive pulls a frontend image: the build may download modules only")
	}
	ins := parseDockerfile(src)
	type stage struct {
		from, name string
		ins        []instruction
	}
	var stages []*stage
	for _, in := range ins {
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := &stage{}
			for i := 0; i < len(f); i++ {
				if strings.HasPrefix(f[i], "--") {
					continue
				}
				if st.from == "" {
					st.from = f[i]
				} else if strings.EqualFold(f[i], "AS") && i+1 < len(f) {
					st.name = f[i+1]
					i++
				}
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) > 0 {
			stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
		}
	}
	if len(stages) < 2 {
		return append(problems, fmt.Sprintf("%d stages: want a multi-stage build (builder, then a small runtime image)", len(stages)))
	}
	build, final := stages[0], stages[len(stages)-1]
	if !strings.HasPrefix(build.from, "golang:") && !strings.HasPrefix(build.from, "golang@") {
		bad("builder stage FROM %s: want a golang image", build.from)
	}
	if final.from != "scratch" && !strings.Contains(final.from, "distroless/static") {
		bad("runtime stage FROM %s: want scratch or distroless static", final.from)
	}
	var buildText strings.Builder
	for _, in := range build.ins {
		buildText.WriteString(in.cmd + " " + in.args + "\n")
		if in.cmd == "RUN" {
			for _, dl := range []string{"curl ", "wget ", "apt-get", "apk ", "git clone"} {
				if strings.Contains(in.args, dl) {
					bad("line %d: RUN uses %q: the build may download modules only", in.line, strings.TrimSpace(dl))
				}
			}
		}
		if in.cmd == "ADD" && strings.Contains(in.args, "://") {
			bad("line %d: ADD of a URL: the build may download modules only", in.line)
		}
	}
	bt := buildText.String()
	for _, want := range []string{"CGO_ENABLED=0", "GOTOOLCHAIN=local", "-trimpath", "go build", "./cmd/agw", "GOPROXY=off"} {
		if !strings.Contains(bt, want) {
			bad("builder stage lacks %s", want)
		}
	}
	var user, entry string
	var copied []string
	for _, in := range final.ins {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entry = in.args
		case "COPY":
			f := strings.Fields(in.args)
			if len(f) >= 3 && f[0] == "--from="+build.name {
				copied = append(copied, f[len(f)-1])
			}
		case "RUN":
			bad("line %d: RUN in the runtime stage (scratch has no shell)", in.line)
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	switch uid {
	case "", "0", "root":
		bad("runtime USER %q: want a non-root user such as 65532:65532", user)
	}
	var ep []string
	if err := json.Unmarshal([]byte(entry), &ep); err != nil || len(ep) == 0 {
		bad("ENTRYPOINT %q: want the exec form naming the agw binary, e.g. [\"/agw\"]", entry)
	} else {
		if path.Base(ep[0]) != "agw" {
			bad("ENTRYPOINT runs %s, want agw", ep[0])
		}
		found := false
		for _, c := range copied {
			found = found || c == ep[0]
		}
		if !found {
			bad("ENTRYPOINT %s is not copied from the %s stage (copied: %v)", ep[0], build.name, copied)
		}
	}
	return problems
}

func TestDockerfile(t *testing.T) {
	src := readFile(t, "../Dockerfile")
	if n := len(parseDockerfile(src)); n < 8 {
		t.Fatalf("parsed %d instructions: parser broken?", n)
	}
	for _, p := range checkDockerfile(src) {
		t.Error(p)
	}
	ignore := readFile(t, "../.dockerignore")
	patterns := map[string]bool{}
	for _, l := range strings.Split(ignore, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns[l] = true
		}
	}
	for _, want := range []string{".git", "bin", "test/node_modules"} {
		if !patterns[want] {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
	for _, keep := range []string{"go.mod", "go.sum", "cmd", "*", "**/*.go", "injector", "sidecar", "xds", "internal", "api", "mls", "interceptors", "client"} {
		if patterns[keep] {
			t.Errorf(".dockerignore excludes %s, which the build needs", keep)
		}
	}
}

func TestDockerfileCheckerCatches(t *testing.T) {
	bad := `# syntax=docker/dockerfile:1
FROM golang:1.26
RUN apt-get install -y foo && go build -o /agw .
ENTRYPOINT /agw
`
	if got := checkDockerfile(bad); len(got) != 2 || !strings.Contains(got[0], "syntax") || !strings.Contains(got[1], "multi-stage") {
		t.Errorf("single stage: %q", got)
	}
	bad = `FROM golang:1.26 AS build
RUN curl -sL https://example.invalid/x | sh
RUN go build -o /out/agw ./cmd/agw
FROM ubuntu
COPY --from=build /out/agw /usr/bin/agw
USER root
ENTRYPOINT ["/bin/sh"]
`
	got := strings.Join(checkDockerfile(bad), "\n")
	for _, want := range []string{"curl", "FROM ubuntu", "CGO_ENABLED=0", "GOTOOLCHAIN=local", "-trimpath", "GOPROXY=off", `USER "root"`, "runs /bin/sh", "not copied"} {
		if !strings.Contains(got, want) {
			t.Errorf("checker missed %q in:\n%s", want, got)
		}
	}
}
