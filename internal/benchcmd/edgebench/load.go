package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// test is one load: a file over one protocol.
type test struct {
	file  benchFile
	proto string // "h1" (wrk, plain HTTP/1.1), "h2" (h2load, HTTPS with HTTP/2) or "hs" (handshakes)
}

func (t test) name() string { return t.file.name + " " + t.proto }

// measure is the result of one load run.
type measure struct {
	reqs, mib float64 // per second
	errors    string  // non-2xx responses or failed requests, if any
}

// results maps test name and server name to the runs' measures.
type results map[string]map[string][]measure

func tests(o options, fx *fixture) []test {
	var out []test
	for _, f := range fx.files {
		protos := []string{"h1", "h2"}
		if f.name == handshakeFile {
			protos = append(protos, "hs")
		}
		for _, proto := range protos {
			t := test{f, proto}
			if o.only == "" || strings.Contains(t.name(), o.only) {
				out = append(out, t)
			}
		}
	}
	return out
}

// load runs every test on every server, rounds times, in a different server order each round.
func load(ctx context.Context, o options, servers []*server, fx *fixture) (results, error) {
	res := results{}
	for _, t := range tests(o, fx) {
		res[t.name()] = map[string][]measure{}
		for round := range o.rounds {
			order := slices.Clone(servers)
			rotate := round % len(order)
			order = append(order[rotate:], order[:rotate]...)
			if round%2 == 1 {
				slices.Reverse(order)
			}
			for _, s := range order {
				m, err := runLoad(ctx, o, t, s, fx)
				if err != nil {
					return nil, fmt.Errorf("%s on %s: %w", t.name(), s.name, err)
				}
				res[t.name()][s.name] = append(res[t.name()][s.name], m)
				fmt.Printf("  %-22s %-14s round %d: %10.0f req/s %9.1f MiB/s%s\n", t.name(), s.name, round+1, m.reqs, m.mib, m.errors)
			}
		}
	}
	return res, nil
}

func runLoad(ctx context.Context, o options, t test, s *server, fx *fixture) (measure, error) {
	if t.proto == "hs" {
		return runHandshakes(ctx, o, t, s, fx)
	}
	secs := strconv.Itoa(max(1, int(o.duration/time.Second)))
	threads := strconv.Itoa(o.threads)
	var argv []string
	if t.proto == "h1" {
		conns := o.conns
		if t.file.name == "bin-10MiB" {
			conns = o.bigConns
		}
		argv = []string{"wrk", "-t", threads, "-c", strconv.Itoa(max(conns, o.threads)), "-d", secs + "s"}
		if t.file.gzipped {
			argv = append(argv, "-H", "Accept-Encoding: gzip")
		}
		argv = append(argv, s.h1+t.file.path)
	} else {
		streams := o.h2Streams
		if t.file.name == "bin-10MiB" {
			streams = 1
		}
		argv = []string{"h2load", "-t", threads, "-c", strconv.Itoa(max(o.h2Clients, o.threads)), "-m", strconv.Itoa(streams), "-D", secs}
		if t.file.gzipped {
			argv = append(argv, "-H", "Accept-Encoding: gzip")
		}
		argv = append(argv, s.h2+t.file.path)
	}
	cctx, cancel := context.WithTimeout(ctx, o.duration+30*time.Second)
	defer cancel()
	if o.pin {
		argv = append([]string{"taskset", "-c", clientCPU}, argv...)
	}
	out, err := exec.CommandContext(cctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return measure{}, fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out)
	}
	if t.proto == "h1" {
		return parseWrk(string(out))
	}
	return parseH2load(string(out))
}

var (
	wrkReqs    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkXfer    = regexp.MustCompile(`Transfer/sec:\s+([0-9.]+)([KMG]?B)`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSockErr = regexp.MustCompile(`Socket errors: .*`)
	h2Finished = regexp.MustCompile(`finished in [0-9.]+m?s, ([0-9.]+) req/s, ([0-9.]+)([KMG]?B)/s`)
	h2Requests = regexp.MustCompile(`requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored`)
	h2Status   = regexp.MustCompile(`status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
)

// mib converts wrk's and h2load's binary units (KB = 1024 bytes) to MiB.
func mib(v float64, unit string) float64 {
	switch unit {
	case "B":
		return v / (1 << 20)
	case "KB":
		return v / (1 << 10)
	case "GB":
		return v * (1 << 10)
	}
	return v
}

func parseWrk(out string) (measure, error) {
	r, x := wrkReqs.FindStringSubmatch(out), wrkXfer.FindStringSubmatch(out)
	if r == nil || x == nil {
		return measure{}, fmt.Errorf("cannot read wrk output:\n%s", out)
	}
	var m measure
	m.reqs, _ = strconv.ParseFloat(r[1], 64)
	v, _ := strconv.ParseFloat(x[1], 64)
	m.mib = mib(v, x[2])
	if n := wrkNon2xx.FindStringSubmatch(out); n != nil {
		m.errors += " non-2xx: " + n[1]
	}
	if e := wrkSockErr.FindString(out); e != "" {
		m.errors += " " + e
	}
	return m, nil
}

func parseH2load(out string) (measure, error) {
	f := h2Finished.FindStringSubmatch(out)
	if f == nil {
		return measure{}, fmt.Errorf("cannot read h2load output:\n%s", out)
	}
	var m measure
	m.reqs, _ = strconv.ParseFloat(f[1], 64)
	v, _ := strconv.ParseFloat(f[2], 64)
	m.mib = mib(v, f[3])
	if r := h2Requests.FindStringSubmatch(out); r != nil && (r[2] != "0" || r[3] != "0") {
		m.errors += fmt.Sprintf(" failed: %s, errored: %s", r[2], r[3])
	}
	if s := h2Status.FindStringSubmatch(out); s != nil && (s[2] != "0" || s[3] != "0" || s[4] != "0") {
		m.errors += fmt.Sprintf(" non-2xx: %s 3xx, %s 4xx, %s 5xx", s[2], s[3], s[4])
	}
	return m, nil
}

// report prints the mean of the rounds per test and server, and the ratio to nginx.
func report(w io.Writer, o options, servers []*server, fx *fixture, res results) {
	fmt.Fprintf(w, "\nMeans over %d rounds of %s; client threads %d; ratio = req/s / nginx req/s\n", o.rounds, o.duration, o.threads)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "test\tserver\treq/s\tMiB/s\tratio\tnote\t")
	var verdicts []string
	for _, t := range tests(o, fx) {
		base := mean(res[t.name()]["nginx"]).reqs // NaN ratios without nginx
		for _, s := range servers {
			m := mean(res[t.name()][s.name])
			note := ""
			if t.file.gzipped && !s.gzipStatic {
				note = "serves identity (no precompressed gzip)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.1f\t%.2f\t%s\t\n", t.name(), s.name, m.reqs, m.mib, m.reqs/base, note)
			if s.name == "dt edge" {
				// The edge is to serve every cell at least as fast as nginx.
				target := 1.0
				verdict := "meets"
				if m.reqs/base < target {
					verdict = "MISSES"
				}
				verdicts = append(verdicts, fmt.Sprintf("%-20s edge/nginx %.2f %s the %.1fx target", t.name(), m.reqs/base, verdict, target))
			}
			if s.name == "dt edge + log + stats" {
				off := mean(res[t.name()]["dt edge"]).reqs // NaN without the edge
				verdicts = append(verdicts, fmt.Sprintf("%-20s access log and statistics on/off %.2f (target 0.9x)", t.name(), m.reqs/off))
			}
			if s.name == "nginx-log" {
				verdicts = append(verdicts, fmt.Sprintf("%-20s nginx's access log on/off %.2f", t.name(), m.reqs/base))
			}
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, v := range verdicts {
		fmt.Fprintln(w, v)
	}
}

func mean(ms []measure) measure {
	var out measure
	for _, m := range ms {
		out.reqs += m.reqs / float64(len(ms))
		out.mib += m.mib / float64(len(ms))
	}
	return out
}

// printVersions prints the version of every peer and client.
func printVersions(ctx context.Context) {
	for _, argv := range [][]string{{"nginx", "-v"}, {"caddy", "version"}, {"wrk", "-v"}, {"h2load", "--version"}} {
		out, _ := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		fmt.Printf("%-7s %s\n", argv[0]+":", line)
	}
}
