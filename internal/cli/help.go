package cli

// examples are the command lines each command's --help ends with: one that works as written
// against the README's loopback network (keys in keys/, a node on 127.0.0.1:7002), and the
// common variations.
var examples = map[string][]string{
	"keygen": {"dt keygen keys/", "dt keygen --publisher ci-keys/   # then copy keys/network.key and keys/master.pub into ci-keys/",
		"dt keygen --issuer issuer-keys/   # then copy keys/network.key and keys/master.pub into issuer-keys/"},
	"grant": {"dt grant --keys keys --peer 127.0.0.1:7002 --site blog $(cat ci-keys/publisher.pub)",
		"dt grant --keys keys --peer 127.0.0.1:7002 --certificates $(cat issuer-keys/issuer.pub)"},
	"issuer": {"dt issuer --keys issuer-keys --data /var/lib/dt/issuer --peer 10.0.0.1:7000 --acme-email ops@example.com \\\n" +
		"      --nameserver 10.0.0.5:53 --admin 127.0.0.1:9004"},
	"grants": {"dt grants --keys keys --peer 127.0.0.1:7002", "dt grants --keys keys --peer 127.0.0.1:7002 --json"},
	"revoke": {"dt revoke --keys keys --peer 127.0.0.1:7002 $(cat ci-keys/publisher.pub)"},
	"node": {
		"dt node --keys keys --data n2 --listen 127.0.0.1:7002 --admin 127.0.0.1:9002",
		"dt node --keys keys --data m --master --peer 127.0.0.1:7002   # a master needs no listener",
	},
	"add":    {"echo '{\"hello\":\"world\"}' | dt add --keys keys --peer 127.0.0.1:7002 -"},
	"remove": {"dt remove --keys keys --peer 127.0.0.1:7002 ID"},
	"send":   {"dt send --keys keys --peer 127.0.0.1:7003 '{\"ping\":1}'"},
	"demo":   {"dt demo", "dt demo --publish ./public"},
	"edge": {
		"dt edge --keys /etc/dt/keys --data /var/lib/dt/edge --peer 10.0.0.1:7000 --listen :7000 \\\n" +
			"      --http :80 --https :443 --domain cdn.example.com --location 52.37,4.90",
	},
	"redirector": {
		"dt redirector --keys /etc/dt/keys --data /var/lib/dt/redirector --listen :7000 --http :80 --https :443 \\\n" +
			"      --domain example.com --geoip /var/lib/dt/GeoLite2-City.mmdb",
	},
	"publish": {
		"dt publish --keys keys --peer 127.0.0.1:7002 ./public",
		"dt publish --keys keys --peer 127.0.0.1:7002 --dry-run ./public   # what would change; no master.key needed",
		"dt publish --keys keys --peer 127.0.0.1:7002 --clean-urls ./public   # kept by later publishes until changed",
		"dt publish --keys keys --peer 127.0.0.1:7002 --site blog ./blog/public   # one site of several (dt sites)",
	},
	"deploys": {"dt deploys --keys keys --peer 127.0.0.1:7002", "dt deploys --keys keys --peer 127.0.0.1:7002 --site blog"},
	"rollback": {"dt rollback --keys keys --peer 127.0.0.1:7002", "dt rollback --keys keys --peer 127.0.0.1:7002 3f2a9c",
		"dt rollback --keys keys --peer 127.0.0.1:7002 --site blog"},
	"site": {
		"dt site add --keys keys --peer 127.0.0.1:7002 blog --host blog.example.com --host www.blog.example.com",
		"dt site set --keys keys --peer 127.0.0.1:7002 default --host www.example.com",
		"dt site remove --keys keys --peer 127.0.0.1:7002 blog",
	},
	"site add": {
		"dt site add --keys keys --peer 127.0.0.1:7002 blog --host blog.example.com --host www.blog.example.com",
		"dt site add --keys keys --peer 127.0.0.1:7002 docs --host '*.docs.example.com'   # one label more",
		"dt site add --keys keys --peer 127.0.0.1:7002 app --host app.example.com --spa --keep 20   # defaults of its publishes",
	},
	"site set": {
		"dt site set --keys keys --peer 127.0.0.1:7002 blog --host blog.example.com",
		"dt site set --keys keys --peer 127.0.0.1:7002 default --host www.example.com   # default stops serving every host",
		"dt site set --keys keys --peer 127.0.0.1:7002 docs --clean-urls   # changes that setting alone; the hosts stay",
	},
	"site remove": {"dt site remove --keys keys --peer 127.0.0.1:7002 blog"},
	"network": {
		"dt network set --keys keys --peer 127.0.0.1:7002 --cdn-zone cdn.example.com",
		"dt network show --keys keys --peer 127.0.0.1:7002",
	},
	"network set": {
		"dt network set --keys keys --peer 127.0.0.1:7002 --cdn-zone cdn.example.com",
		"dt network set --keys keys --peer 127.0.0.1:7002 --cdn-zone ''   # no CDN zone",
	},
	"network show": {"dt network show --keys keys --peer 127.0.0.1:7002", "dt network show --keys keys --peer 127.0.0.1:7002 --json"},
	"sites":        {"dt sites --keys keys --peer 127.0.0.1:7002", "dt sites --keys keys --peer 127.0.0.1:7002 --json"},
	"dns": {
		"dt dns --keys keys --data d1 --peer 127.0.0.1:7002 --dns 127.0.0.1:5353",
		"dt dns --keys keys --data d1 --peer 127.0.0.1:7002 --dns :53 --geo-name cdn.example.com --geoip GeoLite2-City.mmdb",
		"dt dns --keys keys --data d1 --peer 127.0.0.1:7002 --dns :53 --cdn-ns ns1.example.com --cdn-ns ns2.example.net --geoip GeoLite2-City.mmdb",
	},
	"dns-publish": {
		"dt dns-publish --keys keys --peer 127.0.0.1:7002 example.com.zone",
		"dt dns-publish --keys keys --peer 127.0.0.1:7002 --remove-zone example.com",
	},
	"dns-records": {"dt dns-records --keys keys --peer 127.0.0.1:7002 --zone example.com"},
	"resolve":     {"dt resolve --keys keys --peer 127.0.0.1:7002 --type MX example.com"},
	"example":     {"dt example --duration 30s"},
	"loadtest":    {"dt loadtest --objects 30000 --mode initial"},
	"version":     {"dt version", "dt --version"},
	"stats": {
		"dt stats --admin 127.0.0.1:9100 --site blog                 # the last 24 hours",
		"dt stats --admin 127.0.0.1:9100 --site blog --since 720h --json",
	},
	"guard": {
		"dt guard list --admin 127.0.0.1:9002",
		"dt guard unblock --admin 127.0.0.1:9002 192.0.2.7",
	},
	"guard list": {
		"dt guard list --admin 127.0.0.1:9002              # a running node, through its admin listener",
		"sudo -u dt dt guard list --data /var/lib/dt-edge   # a stopped node",
	},
	"guard unblock": {
		"dt guard unblock --admin 127.0.0.1:9002 192.0.2.7",
		"dt guard unblock --admin 127.0.0.1:9002 2001:db8:1::/48",
		"sudo -u dt dt guard unblock --data /var/lib/dt-edge all   # a stopped node",
	},
}
