// Where a temporary file or directory goes: where python's tempfile would put one, in the
// first of $TMPDIR, $TEMP, $TMP, /tmp, /var/tmp, /usr/tmp and the working directory where
// it can be made (a $TMPDIR that does not exist stops no program under python).
#pragma once

#include <string>
#include <vector>

namespace vztrace::tracer {

// The places in that order, each absolute (a relative $TMPDIR is taken from the working
// directory): a child that changes directory finds the same.
std::vector<std::string> temp_places();

}  // namespace vztrace::tracer
