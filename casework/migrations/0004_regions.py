"""Administrative regions (GB/T 2260) that the demo tree and routing use.

Guangdong province, its 21 prefecture-level cities, and the districts of
Guangzhou, Shenzhen and Foshan. Written by hand: it is data, not schema.
"""

from django.db import migrations

PROVINCE = ("440000", "广东省", "Guangdong Province")

CITIES = [
    ("440100", "广州市", "Guangzhou"),
    ("440200", "韶关市", "Shaoguan"),
    ("440300", "深圳市", "Shenzhen"),
    ("440400", "珠海市", "Zhuhai"),
    ("440500", "汕头市", "Shantou"),
    ("440600", "佛山市", "Foshan"),
    ("440700", "江门市", "Jiangmen"),
    ("440800", "湛江市", "Zhanjiang"),
    ("440900", "茂名市", "Maoming"),
    ("441200", "肇庆市", "Zhaoqing"),
    ("441300", "惠州市", "Huizhou"),
    ("441400", "梅州市", "Meizhou"),
    ("441500", "汕尾市", "Shanwei"),
    ("441600", "河源市", "Heyuan"),
    ("441700", "阳江市", "Yangjiang"),
    ("441800", "清远市", "Qingyuan"),
    ("441900", "东莞市", "Dongguan"),
    ("442000", "中山市", "Zhongshan"),
    ("445100", "潮州市", "Chaozhou"),
    ("445200", "揭阳市", "Jieyang"),
    ("445300", "云浮市", "Yunfu"),
]

DISTRICTS = [
    # Guangzhou
    ("440103", "荔湾区", "Liwan District"),
    ("440104", "越秀区", "Yuexiu District"),
    ("440105", "海珠区", "Haizhu District"),
    ("440106", "天河区", "Tianhe District"),
    ("440111", "白云区", "Baiyun District"),
    ("440112", "黄埔区", "Huangpu District"),
    ("440113", "番禺区", "Panyu District"),
    ("440114", "花都区", "Huadu District"),
    ("440115", "南沙区", "Nansha District"),
    ("440117", "从化区", "Conghua District"),
    ("440118", "增城区", "Zengcheng District"),
    # Shenzhen
    ("440303", "罗湖区", "Luohu District"),
    ("440304", "福田区", "Futian District"),
    ("440305", "南山区", "Nanshan District"),
    ("440306", "宝安区", "Bao'an District"),
    ("440307", "龙岗区", "Longgang District"),
    ("440308", "盐田区", "Yantian District"),
    ("440309", "龙华区", "Longhua District"),
    ("440310", "坪山区", "Pingshan District"),
    ("440311", "光明区", "Guangming District"),
    # Foshan
    ("440604", "禅城区", "Chancheng District"),
    ("440605", "南海区", "Nanhai District"),
    ("440606", "顺德区", "Shunde District"),
    ("440607", "三水区", "Sanshui District"),
    ("440608", "高明区", "Gaoming District"),
]

PROVINCE_LEVEL, CITY_LEVEL, DISTRICT_LEVEL = 1, 2, 3


def add(apps, schema_editor):
    Region = apps.get_model("casework", "Region")
    code, name, name_en = PROVINCE
    province, _ = Region.objects.update_or_create(
        code=code,
        defaults={"name": name, "name_en": name_en, "level": PROVINCE_LEVEL, "parent": None},
    )
    cities = {}
    for code, name, name_en in CITIES:
        cities[code], _ = Region.objects.update_or_create(
            code=code,
            defaults={"name": name, "name_en": name_en, "level": CITY_LEVEL, "parent": province},
        )
    for code, name, name_en in DISTRICTS:
        Region.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "name_en": name_en,
                "level": DISTRICT_LEVEL,
                "parent": cities[code[:4] + "00"],
            },
        )


def remove(apps, schema_editor):
    Region = apps.get_model("casework", "Region")
    # Children first: parent is PROTECT.
    Region.objects.filter(code__in=[c for c, _, _ in DISTRICTS]).delete()
    Region.objects.filter(code__in=[c for c, _, _ in CITIES]).delete()
    Region.objects.filter(code=PROVINCE[0]).delete()


class Migration(migrations.Migration):
    dependencies = [("casework", "0003_categories")]
    operations = [migrations.RunPython(add, remove)]
