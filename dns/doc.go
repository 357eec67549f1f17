// Package dns runs a DNS node: a dt node that answers DNS authoritatively, over UDP and TCP, for
// the zones its table holds (package zone writes them, package server answers from them), with
// GeoDNS for the site's public name (package geo), the CDN zone made from the table (package
// synth), ACME DNS-01 answers from the table (challenge.Set) and the answering side of dt
// resolve (package resolve). Node is the whole role; Config says what it serves and Run serves it until its
// context ends.
//
// Every DNS node of a network answers alike: the zones are records of the table, which every
// node holds, verified. A node that was offline answers from the zones it held until it catches
// up, which it does as soon as it reconnects.
package dns
