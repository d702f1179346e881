# A call with 40 arguments of 1000 characters each, and an instant with as many: more than
# the 16 KiB an event's arguments take.
import vztrace

namespace = {}
exec("def many(%s):\n    return 0\n" % ", ".join("a%d" % i for i in range(40)), namespace)
namespace["many"](*["y" * 1000] * 40)
vztrace.instant("many_instant", **{"k%d" % i: "y" * 1000 for i in range(40)})
