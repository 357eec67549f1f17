package publish

import "errors"

// Errors returned by Scan and the Plan. Check them with errors.Is; returned errors wrap them with
// the file concerned. Scan reports every refused file it finds (up to a limit), joined with
// errors.Join, so one run lists them all.
var (
	// ErrHidden is returned by Scan for a hidden file or directory (a name starting with ".")
	// when ScanOptions.IncludeHidden is not set, and for .git always.
	ErrHidden = errors.New("publish: hidden file refused")
	// ErrSymlink is returned by Scan for a symbolic link when ScanOptions.FollowSymlinks is not
	// set, and for one that points outside the site directory, loops, or dangles.
	ErrSymlink = errors.New("publish: symbolic link refused")
	// ErrUnsafeName is returned by Scan for a file whose name cannot be a site path: not UTF-8,
	// or with a control character (a newline), a backslash, or over site.MaxPathLen.
	ErrUnsafeName = errors.New("publish: unsafe file name")
	// ErrNotRegular is returned by Scan for a device, FIFO, socket or other special file.
	ErrNotRegular = errors.New("publish: not a regular file")
	// ErrEmpty is returned by Scan when the directory holds no file to publish and no redirect.
	ErrEmpty = errors.New("publish: nothing to publish")
	// ErrChanged is returned when a file changes while Scan reads it, or when Plan.Open or
	// Plan.ReadBlob find that a blob's bytes no longer hash to its hash (the file changed after
	// the scan). Scan again.
	ErrChanged = errors.New("publish: file changed during publishing")
	// ErrUnknownBlob is returned by Plan.Open and Plan.ReadBlob for a hash the plan does not hold.
	ErrUnknownBlob = errors.New("publish: blob not in the plan")
)

// Errors returned by the site commands (AddSite, SetSite, RemoveSite) and by publishing to a
// site. Returned errors wrap them with the site or hosts concerned.
var (
	// ErrSiteExists is returned by AddSite for a site that exists already, with a record or as
	// the implicit default site.
	ErrSiteExists = errors.New("publish: site exists")
	// ErrNoSite is returned for a site that has no record and is not the implicit default site.
	ErrNoSite = errors.New("publish: no such site")
	// ErrSiteRequired is returned when no site is named (NetworkOptions.Site) and the network
	// has several.
	ErrSiteRequired = errors.New("publish: the network has several sites: name one")
	// ErrHostTaken is returned by AddSite and SetSite for a host another site claims already.
	ErrHostTaken = errors.New("publish: host claimed by another site")
	// ErrOldEdges is returned by AddSiteSpec and UpdateSite for a record with settings while a
	// live edge of an earlier release, which would refuse that record (see site.Record), is
	// heard (SiteSpec.Force overrides).
	ErrOldEdges = errors.New("publish: live edges of an earlier release would drop a site with settings")
)
