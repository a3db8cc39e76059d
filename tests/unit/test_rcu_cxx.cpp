// The typed wrappers of cow/rcu.h expanded and used from C++.
#include <cstdio>
#include <cstdlib>

#include "cow/rcu.h"

struct point {
	int x, y;
};

COW_RCU_DEFINE(point_ref, point)

int main()
{
	point p = {1, 2};
	cow_rcu_ops ops = {sizeof(point), nullptr, nullptr, nullptr};
	point_ref ref;
	if (point_ref_create(&ref, &ops, &p) != 0)
		return 1;
	point *n = nullptr;
	if (point_ref_update_begin(&ref, &n) != 0)
		return 1;
	n->x = 5;
	if (point_ref_update_commit(&ref, n, 0) != 0)
		return 1;
	cow_rcu_read_lock();
	int x = point_ref_deref(&ref)->x, y = point_ref_deref(&ref)->y;
	cow_rcu_read_unlock();
	point_ref_destroy(&ref);
	if (x != 5 || y != 2) {
		std::printf("got %d,%d, want 5,2\n", x, y);
		return 1;
	}
	return 0;
}
