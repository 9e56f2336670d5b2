// SPDX-License-Identifier: MIT
/* placeholder: save/restore arrive with the driver's save API */
#include <errno.h>

#include "manager/mgr_internal.h"

int mgr_dev_save(struct mgr_dev *d, struct mgr_req *req)
{
	(void)d;
	(void)req;
	return -EOPNOTSUPP;
}

int mgr_dev_restore(struct mgr_dev *d, struct mgr_req *req)
{
	(void)d;
	(void)req;
	return -EOPNOTSUPP;
}
