// SPDX-License-Identifier: MIT
/*
 * The PCI function around the controller: a type 0 configuration header
 * (PCI Local Bus 3.0 6.1) with class 01h/08h/02h (NVM Express, Base 2.0
 * 1.5/"PCI Express Class Code"), two 64-bit memory BARs and an MSI-X
 * capability (PCI 3.0 6.8.2):
 *   BAR0 (region 0): controller registers, then doorbells (sparse-mmap)
 *   BAR4 (region 4): MSI-X table at 0, PBA after it (page aligned)
 * Vendor/device ids are those the emulator reports in Identify (VID/SSVID).
 *
 * Writable: Command (memory space, bus master, INTx disable), the BARs
 * (sizing with all-ones reads back the size mask), MSI-X Message Control
 * (enable, function mask). Everything else reads as configured.
 */
#include <errno.h>
#include <string.h>

#include "nvmekeep/emu.h"
#include "server.h"

#define PCI_VENDOR_ID	   0x1de5
#define PCI_DEVICE_ID	   0x0e01
#define CFG_COMMAND	   0x04
#define CFG_STATUS	   0x06
#define CFG_BAR0	   0x10
#define CFG_BAR4	   0x20
#define CFG_CAP_PTR	   0x34
#define CMD_WRITABLE	   0x0406u /* memory space, bus master, INTx disable */
#define MSIX_CTRL	   (SRV_MSIX_CAP + 2)
#define MSIX_CTRL_WRITABLE 0xc000u /* MSI-X Enable, Function Mask */
#define BAR_MEM64	   0x4u

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static size_t pow2_at_least(size_t v, size_t min)
{
	size_t p = min;

	while (p < v)
		p <<= 1;
	return p;
}

void srv_pci_init(struct srv *s)
{
	uint8_t *c = s->cfg;
	size_t table = (size_t)s->nvec * 16, pba_off;

	memset(c, 0, SRV_CFG_SIZE);
	put16(c + 0x00, PCI_VENDOR_ID);
	put16(c + 0x02, PCI_DEVICE_ID);
	put16(c + CFG_STATUS, 0x0010); /* capabilities list */
	c[0x09] = 0x02;		       /* programming interface: NVM Express */
	c[0x0a] = 0x08;		       /* subclass: non-volatile memory */
	c[0x0b] = 0x01;		       /* class: mass storage */
	put16(c + 0x2c, PCI_VENDOR_ID);
	put16(c + 0x2e, PCI_DEVICE_ID);
	c[CFG_CAP_PTR] = SRV_MSIX_CAP;

	s->bar0_region = pow2_at_least(s->bar0_size, 16384);
	pba_off = (table + 4095) & ~(size_t)4095;
	s->bar4_size = pow2_at_least(pba_off + (((size_t)s->nvec + 63) / 64) * 8, 4096);

	/* MSI-X capability: table in BAR4 at 0, PBA in BAR4 after the table */
	c[SRV_MSIX_CAP] = 0x11;
	c[SRV_MSIX_CAP + 1] = 0; /* last capability */
	put16(c + MSIX_CTRL, (uint16_t)(s->nvec - 1));
	put32(c + SRV_MSIX_CAP + 4, 0 | 4);		    /* table offset, BIR 4 */
	put32(c + SRV_MSIX_CAP + 8, (uint32_t)pba_off | 4); /* PBA offset, BIR 4 */
	s->bar0_addr = 0;
	s->bar4_addr = 0;
	/* Vectors start unmasked, unlike bare PCI (6.8.2.9): as with VFIO's
	 * ioctl interface, DEVICE_SET_IRQS with an eventfd is what arms a
	 * vector, and a client that never touches the table gets interrupts. */
	memset(s->msix_table, 0, table);
	for (unsigned v = 0; v < s->nvec; v++)
		nvmk_emu_irq_mask(s->emu, (uint16_t)v, false);
}

/* The dword at @off as read now. */
static uint32_t cfg_dword(struct srv *s, uint32_t off)
{
	uint32_t v;

	switch (off) {
	case CFG_BAR0:
		return (uint32_t)s->bar0_addr | BAR_MEM64;
	case CFG_BAR0 + 4:
		return (uint32_t)(s->bar0_addr >> 32);
	case CFG_BAR4:
		return (uint32_t)s->bar4_addr | BAR_MEM64;
	case CFG_BAR4 + 4:
		return (uint32_t)(s->bar4_addr >> 32);
	default:
		memcpy(&v, s->cfg + off, 4);
		return v;
	}
}

int srv_cfg_read(struct srv *s, uint64_t off, uint32_t count, uint8_t *out)
{
	if (off >= SRV_CFG_SIZE || count > SRV_CFG_SIZE - off)
		return -EINVAL;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t o = (uint32_t)off + i;
		uint32_t d = cfg_dword(s, o & ~3u);

		out[i] = (uint8_t)(d >> ((o & 3) * 8));
	}
	return 0;
}

/* A BAR write: the base is what was written, cleared below the size. */
static void bar_write(uint64_t *addr, size_t size, bool hi, uint32_t v)
{
	if (hi)
		*addr = (*addr & 0xffffffffull) | (uint64_t)v << 32;
	else
		*addr = (*addr & ~0xffffffffull) | (v & ~(uint32_t)(size - 1) & ~0xfu);
}

int srv_cfg_write(struct srv *s, uint64_t off, uint32_t count, const uint8_t *in)
{
	if (off >= SRV_CFG_SIZE || count > SRV_CFG_SIZE - off)
		return -EINVAL;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t o = (uint32_t)off + i, dw = o & ~3u, sh = (o & 3) * 8;
		uint32_t d = cfg_dword(s, dw);

		d = (d & ~(0xffu << sh)) | ((uint32_t)in[i] << sh);
		switch (dw) {
		case CFG_COMMAND: {
			uint16_t cmd = (uint16_t)(d & CMD_WRITABLE);

			put16(s->cfg + CFG_COMMAND, cmd);
			break;
		}
		case CFG_BAR0:
		case CFG_BAR0 + 4:
			bar_write(&s->bar0_addr, s->bar0_region, dw & 4, d);
			break;
		case CFG_BAR4:
		case CFG_BAR4 + 4:
			bar_write(&s->bar4_addr, s->bar4_size, dw & 4, d);
			break;
		case SRV_MSIX_CAP: {
			uint16_t ctl, old;

			memcpy(&old, s->cfg + MSIX_CTRL, 2);
			ctl = (uint16_t)((old & ~MSIX_CTRL_WRITABLE) |
					 ((d >> 16) & MSIX_CTRL_WRITABLE));
			put16(s->cfg + MSIX_CTRL, ctl);
			break;
		}
		default:
			break; /* read-only */
		}
	}
	return 0;
}

/* BAR4: MSI-X table (4 dwords per vector: address lo/hi, data, vector
 * control) and the PBA (pending bits: the emulator signals eventfds and keeps
 * none pending here, so it reads 0). */
int srv_bar4_read(struct srv *s, uint64_t off, uint32_t count, uint8_t *out)
{
	size_t table = (size_t)s->nvec * 16;

	if (off >= s->bar4_size || count > s->bar4_size - off)
		return -EINVAL;
	for (uint32_t i = 0; i < count; i++) {
		uint64_t o = off + i;

		out[i] = o < table ? (uint8_t)(s->msix_table[o / 4] >> ((o & 3) * 8)) : 0;
	}
	return 0;
}

int srv_bar4_write(struct srv *s, uint64_t off, uint32_t count, const uint8_t *in)
{
	size_t table = (size_t)s->nvec * 16;

	if (off >= s->bar4_size || count > s->bar4_size - off)
		return -EINVAL;
	for (uint32_t i = 0; i < count; i++) {
		uint64_t o = off + i;
		uint32_t *dw, sh;

		if (o >= table)
			continue; /* PBA is read-only */
		dw = &s->msix_table[o / 4];
		sh = (uint32_t)(o & 3) * 8;
		*dw = (*dw & ~(0xffu << sh)) | ((uint32_t)in[i] << sh);
		if ((o & 15) >= 12) /* vector control: bit 0 masks the vector */
			nvmk_emu_irq_mask(s->emu, (uint16_t)(o / 16), s->msix_table[o / 4] & 1);
	}
	return 0;
}
